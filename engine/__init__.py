"""marketops engine: the pure core (definitions, loading, validation, planning, scheduling)."""

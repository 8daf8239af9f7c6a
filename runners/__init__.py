"""marketops runners: the side effects (SQL, PostgreSQL tools, storage, delivery)."""

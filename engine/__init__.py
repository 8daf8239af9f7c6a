"""marketops engine: the pure core (definitions, loading, validation, planning, scheduling),
and in engine.app the composition root, the only part that imports runners."""

import logging

# Library logging stays silent unless `marketops serve` (or a user) configures it.
logging.getLogger("marketops").addHandler(logging.NullHandler())

"""marketops engine: the pure core (definitions, validation, database schemas, scheduling,
runs, backups and reports policy, as functions of their inputs), and in engine.app the
composition root, the only part that imports runners."""

import logging

# Library logging stays silent unless `marketops serve` (or a user) configures it.
logging.getLogger("marketops").addHandler(logging.NullHandler())

"""One handler per backup tier kind (logical, physical, wal, audit, drill), each with its run,
restore, verify, freshness and retention; `executor.py` looks them up by kind."""

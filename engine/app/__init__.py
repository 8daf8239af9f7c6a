"""The composition root: the only part of `engine` that imports `runners`. It resolves the
settings into connections, stores and tools, and hands each runner a fully resolved job."""

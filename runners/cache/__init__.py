"""Local caches under .marketops/cache."""

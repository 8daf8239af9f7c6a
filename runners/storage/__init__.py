"""Storage: destinations (staging then rename), sealing (zstd + age), the backup catalog,
verification.
"""

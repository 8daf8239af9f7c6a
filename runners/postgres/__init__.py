"""PostgreSQL: connections (the one psycopg importer), client tools, the embedded server,
introspection, recovery.
"""

"""Database schemas: DDL from the models, drift, YAML from a pulled catalog, lineage and
impact.
"""

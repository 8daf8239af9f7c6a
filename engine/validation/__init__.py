"""Validation: the rules, the SQL analysis (sqlglot), and rendering of findings."""

"""The pydantic models of every definition kind; their docstrings become the JSON Schema."""

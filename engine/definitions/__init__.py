"""The definitions: models (pydantic), YAML loading with positions, the project, the
glossary.
"""

"""A business term defined once in `definitions/glossary/<term>.yaml` and read by reports."""

from __future__ import annotations

from pydantic import Field, model_validator

from engine.definitions.models.base import Identifier, Model


class Term(Model):
    """A shared definition (purchase, net revenue, ...): words for people, one SELECT for SQL.

    Reports list the terms they read under `uses` and name them in their SQL as a relation
    (`from purchases p`); the engine puts each in front of the report's SQL as a CTE."""

    description: str = Field(min_length=3, description="The term in words, exact enough to "
                             "compute it from the raw tables without reading the SQL.")
    sql: str | None = Field(None, description="One SELECT that yields the term as a relation.")
    sql_file: str | None = Field(None, description="Path of a .sql file, relative to this one.")
    uses: list[Identifier] = Field(default_factory=list,
                                   description="Other glossary terms this one reads.")

    @model_validator(mode="after")
    def _one_sql_source(self) -> Term:
        if (self.sql is None) == (self.sql_file is None):
            raise ValueError("give exactly one of `sql` (inline) or `sql_file`")
        return self

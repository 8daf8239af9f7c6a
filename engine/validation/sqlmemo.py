"""SQL analyses remembered by content, like dbt's partial parsing: validate re-checks only the
SQL that changed.

An entry's key is the sha256 of everything the analysis depends on: the checker's own
fingerprint (marketops and sqlglot versions, the checker's source), the catalog (every declared
table, column, type, PII tag, the search_path and the functions) and the SQL text. A changed
file, schema or tool gives a new key, so a stale entry is never looked up; an entry that does
not decode is recomputed. Loading and saving the entries is the caller's
(runners.cache.analyses).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from engine.validation.sqltypes import DeclaredSchema, SqlAnalysis, SqlProblem

if TYPE_CHECKING:
    from collections.abc import Callable

# Bumped when the encoding below changes.
FORMAT = 1


def catalog_fingerprint(catalog: DeclaredSchema) -> str:
    """sha256 of everything in the catalog that SQL checks read."""
    text = json.dumps([catalog.tables, sorted(catalog.pii), list(catalog.search_path),
                       sorted(catalog.safe_functions), sorted(catalog.functions)],
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def encode(analysis: SqlAnalysis) -> dict[str, Any]:
    """The analysis as plain JSON (sets sorted, dict order kept)."""
    return {"problems": [[p.message, p.rule, p.line, p.col] for p in analysis.problems],
            "tables": sorted(analysis.tables), "columns": sorted(analysis.columns),
            "parameters": [[name, line, col] for name, (line, col)
                           in analysis.parameters.items()],
            "outputs": list(analysis.outputs),
            "exposed": [[name, sorted(refs)] for name, refs in analysis.exposed.items()]}


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not an integer")
    return value


def _ref(value: object, size: int) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) != size:
        raise TypeError("not a reference")
    return tuple(_text(v) for v in value)


def _table(value: object) -> tuple[str, str]:
    schema, table = _ref(value, 2)
    return schema, table


def _column(value: object) -> tuple[str, str, str]:
    schema, table, column = _ref(value, 3)
    return schema, table, column


def decode(data: object) -> SqlAnalysis:
    """The analysis `encode` wrote; TypeError/ValueError/KeyError when it is not one."""
    if not isinstance(data, dict):
        raise TypeError("not an entry")
    return SqlAnalysis(
        problems=[SqlProblem(_text(m), _text(r), _int(line), _int(col))
                  for m, r, line, col in data["problems"]],
        tables={_table(t) for t in data["tables"]},
        columns={_column(c) for c in data["columns"]},
        parameters={_text(name): (_int(line), _int(col))
                    for name, line, col in data["parameters"]},
        outputs=[_text(o) for o in data["outputs"]],
        exposed={_text(name): {_column(r) for r in refs} for name, refs in data["exposed"]})


class SqlMemo:
    """analyze() and own_cte_names() answered from `entries` when the key is there.

    `entries` is read by the caller; afterwards `used` holds exactly the entries this run
    looked up or computed (what is worth saving), and `changed` says whether saving is
    needed at all."""

    def __init__(self, entries: dict[str, Any], tool: str) -> None:
        self.entries = entries
        self.tool = tool
        self.used: dict[str, Any] = {}
        self.hits = 0
        self.misses = 0
        self._catalogs: dict[int, tuple[DeclaredSchema, str]] = {}

    @property
    def changed(self) -> bool:
        return self.misses > 0 or len(self.used) != len(self.entries)

    def key(self, kind: str, sql: str, catalog: DeclaredSchema | None) -> str:
        parts = [str(FORMAT), self.tool, kind]
        if catalog is not None:
            parts.append(self._fingerprint(catalog))
        digest = hashlib.sha256("\x00".join(parts).encode())
        digest.update(b"\x00")
        digest.update(sql.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def _fingerprint(self, catalog: DeclaredSchema) -> str:
        # A project has one catalog; fingerprint it once (kept alive, so the id stays its own).
        known = self._catalogs.get(id(catalog))
        if known is None or known[0] is not catalog:
            known = (catalog, catalog_fingerprint(catalog))
            self._catalogs[id(catalog)] = known
        return known[1]

    def _remember(self, key: str, compute: Callable[[], Any],
                  load: Callable[[object], Any], store: Callable[[Any], Any]) -> Any:
        if key in self.entries:
            try:
                value = load(self.entries[key])
            except (TypeError, ValueError, KeyError):
                pass  # corrupt or from another encoding: computed again below
            else:
                self.hits += 1
                self.used[key] = self.entries[key]
                return value
        self.misses += 1
        value = compute()
        self.used[key] = store(value)
        return value

    def analyze(self, sql: str, catalog: DeclaredSchema) -> SqlAnalysis:
        """engine.validation.sqlcheck.analyze(sql, catalog), remembered (a fresh object each
        call)."""
        def compute() -> SqlAnalysis:
            from engine.validation.sqlcheck import analyze

            return analyze(sql, catalog)

        # Encoded before it is returned: callers change the analysis (views are folded in).
        key = self.key("analyze", sql, catalog)
        result: SqlAnalysis = self._remember(key, compute, decode, encode)
        return result

    def own_cte_names(self, sql: str) -> set[str]:
        """engine.validation.sqlcheck.own_cte_names(sql), remembered."""
        def compute() -> set[str]:
            from engine.validation.sqlcheck import own_cte_names

            return own_cte_names(sql)

        def load(data: object) -> set[str]:
            if not isinstance(data, list):
                raise TypeError("not a list of names")
            return {_text(n) for n in data}

        result: set[str] = self._remember(self.key("ctes", sql, None), compute, load,
                                          lambda names: sorted(names))
        return result

"""Report SQL checked with sqlglot against the declared schema: read-only, resolvable, traced.

Positions are (line, col) within the SQL text, 1-based; callers map them onto their file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SqlglotError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.tokenizer_core import Token

from engine.dbschema.pgnames import qualified
from engine.validation.sqltypes import ColumnRef as ColumnRef

# Re-exported: the result types live apart so a cached validation need not import sqlglot.
from engine.validation.sqltypes import DeclaredSchema as DeclaredSchema
from engine.validation.sqltypes import SqlAnalysis as SqlAnalysis
from engine.validation.sqltypes import SqlProblem as SqlProblem
from engine.validation.sqltypes import TableRef as TableRef

# sqlglot logs a warning for every statement it falls back to parsing as a Command;
# we report those ourselves.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


# Statement kinds that write, lock, create, change settings or reach outside the database.
_FORBIDDEN_NODES: dict[type[exp.Expr], str] = {
    getattr(exp, name): label for name, label in {
        "Insert": "INSERT writes", "Update": "UPDATE writes", "Delete": "DELETE writes",
        "Merge": "MERGE writes", "Create": "CREATE creates objects", "Drop": "DROP removes "
        "objects", "Alter": "ALTER changes objects", "AlterTable": "ALTER changes objects",
        "TruncateTable": "TRUNCATE writes", "Command": "this statement is not a query",
        "Copy": "COPY reaches files or programs", "Set": "SET changes settings",
        "Lock": "FOR UPDATE/SHARE locks rows", "Into": "SELECT INTO creates a table",
        "Transaction": "transaction control is not allowed", "Commit": "COMMIT is not allowed",
        "Rollback": "ROLLBACK is not allowed", "Grant": "GRANT changes privileges",
        "Revoke": "REVOKE changes privileges", "LoadData": "LOAD reaches files",
        "Pragma": "PRAGMA changes settings", "Use": "USE changes the session",
        "Analyze": "ANALYZE writes statistics", "Refresh": "REFRESH writes",
        "Call": "CALL runs a procedure", "Execute": "EXECUTE runs dynamic SQL",
        "Declare": "DECLARE is not allowed", "Kill": "KILL is not allowed",
    }.items() if hasattr(exp, name)
}

# Built-in functions with side effects or reach beyond the database, by name or prefix.
_FORBIDDEN_FUNCTIONS = {
    "nextval": "writes a sequence", "setval": "writes a sequence",
    "set_config": "changes settings", "pg_notify": "sends notifications",
    "txid_current": "assigns a transaction id", "pg_current_xact_id": "assigns a transaction id",
    "pg_read_file": "reads server files", "pg_read_binary_file": "reads server files",
    "pg_stat_file": "reads server files", "pg_file_write": "writes server files",
    "pg_file_rename": "renames server files", "pg_file_unlink": "deletes server files",
    "pg_terminate_backend": "kills sessions", "pg_cancel_backend": "cancels queries",
    "pg_reload_conf": "reloads the server configuration", "pg_rotate_logfile": "rotates logs",
    "pg_switch_wal": "switches WAL", "pg_create_restore_point": "writes WAL",
    "pg_backup_start": "starts a backup", "pg_backup_stop": "stops a backup",
    "pg_promote": "promotes a standby", "pg_logical_emit_message": "writes WAL",
    "pg_import_system_collations": "creates objects", "query_to_xml": "runs dynamic SQL",
    "query_to_xml_and_xmlschema": "runs dynamic SQL", "query_to_xmlschema": "runs dynamic SQL",
    "cursor_to_xml": "reads a cursor", "table_to_xml": "reads a table by name",
    "table_to_xml_and_xmlschema": "reads a table by name", "schema_to_xml": "reads a schema",
    "database_to_xml": "reads the whole database", "loread": "reads large objects",
    "lowrite": "writes large objects",
}
_FORBIDDEN_PREFIXES = {
    "lo_": "touches large objects", "dblink": "reaches another server",
    "pg_ls_": "lists server files", "pg_advisory": "takes locks",
    "pg_try_advisory": "takes locks", "pg_sleep": "sleeps", "pg_stat_reset": "resets statistics",
    "pg_replication_": "changes replication", "pg_create_": "creates objects",
    "pg_drop_replication": "changes replication", "pg_wal_replay_": "controls recovery",
}
# Aggregates whose result does not reveal an individual value.
_OPAQUE_AGGREGATES = (exp.Count, exp.Avg, exp.Sum, exp.Stddev, exp.StddevPop, exp.StddevSamp,
                      exp.Variance, exp.VariancePop, exp.ApproxDistinct)


def _pos(node: exp.Expr) -> tuple[int, int]:
    """Best-known (line, col) of a node: its own token, else its first identifier's."""
    for candidate in (node, *node.find_all(exp.Identifier)):
        meta = candidate.meta if candidate.meta else {}
        if "line" in meta:
            line, end_col = int(meta["line"]), int(meta["col"])
            length = int(meta.get("end", 0)) - int(meta.get("start", 0)) + 1
            return line, max(1, end_col - length + 1)
    return 1, 1


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _function_problem(name: str) -> str | None:
    if name in _FORBIDDEN_FUNCTIONS:
        return _FORBIDDEN_FUNCTIONS[name]
    for prefix, why in _FORBIDDEN_PREFIXES.items():
        if name.startswith(prefix):
            return why
    return None


_DIALECT = sqlglot.Dialect.get_or_raise("postgres")

# Past these, sqlglot's recursive parser and its qualifier (quadratic in the UNION branches:
# 1,000 take 30 s) would crash or stall validate; no report needs to come near them.
MAX_SQL_CHARS = 1024 * 1024
MAX_PAREN_DEPTH = 32
MAX_SET_BRANCHES = 200
_SET_OPERATORS = (sqlglot.TokenType.UNION, sqlglot.TokenType.INTERSECT, sqlglot.TokenType.EXCEPT)


def _start(token: Token) -> tuple[int, int]:
    return token.line, max(1, token.col - len(token.text) + 1)


def size_problem(sql: str, tokens: list[Token]) -> SqlProblem | None:
    """Why the query is too large or too deeply nested to check, at the place it happens."""
    nul = sql.find("\x00")
    if nul >= 0:
        line = sql.count("\n", 0, nul) + 1
        return SqlProblem("the SQL contains a NUL character (U+0000); remove it", "sql-syntax",
                          line, nul - (sql.rfind("\n", 0, nul) + 1) + 1)
    depth = branches = 0
    for token in tokens:
        if token.token_type == sqlglot.TokenType.L_PAREN:
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                return SqlProblem(f"the SQL nests parentheses more than {MAX_PAREN_DEPTH} deep; "
                                  "flatten it (a CTE per level)", "sql-too-large",
                                  *_start(token))
        elif token.token_type == sqlglot.TokenType.R_PAREN:
            depth = max(0, depth - 1)
        elif token.token_type in _SET_OPERATORS:
            branches += 1
            if branches >= MAX_SET_BRANCHES:
                return SqlProblem(f"the SQL combines more than {MAX_SET_BRANCHES} queries with "
                                  "UNION/INTERSECT/EXCEPT; read the varying values from a "
                                  "table or a VALUES list instead", "sql-too-large",
                                  *_start(token))
    return None


def _second_statement(tokens: list[Token]) -> tuple[int, int]:
    seen_statement = False
    after_semicolon = False
    for token in tokens:
        if token.token_type == sqlglot.TokenType.SEMICOLON:
            after_semicolon = seen_statement
        elif after_semicolon:
            return token.line, max(1, token.col - len(token.text) + 1)
        else:
            seen_statement = True
    return 1, 1


def parse_single(sql: str, tokens: list[Token] | None = None
                 ) -> tuple[exp.Expr | None, list[SqlProblem]]:
    """Parse exactly one PostgreSQL statement (from its tokens, when already tokenized)."""
    if len(sql) > MAX_SQL_CHARS:
        return None, [SqlProblem(f"the SQL is longer than {MAX_SQL_CHARS:,} characters",
                                 "sql-too-large")]
    try:
        tokens = tokens if tokens is not None else _DIALECT.tokenize(sql)
        too_large = size_problem(sql, tokens)
        if too_large is not None:
            return None, [too_large]
        statements = [s for s in _DIALECT.parser().parse(tokens, sql) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        description = str(first.get("description", exc)).split(" <Token")[0]
        if description.endswith(" but got") and first.get("highlight"):
            description += f" '{first['highlight']}'"
        line, col = int(first.get("line") or 1), int(first.get("col") or 1)
        col = max(1, col - len(str(first.get("highlight") or " ")) + 1)
        return None, [SqlProblem(f"SQL does not parse: {description}", "sql-syntax", line, col)]
    except TokenError:
        return None, [SqlProblem("SQL does not parse: unterminated string, quoted name or "
                                 "comment", "sql-syntax")]
    except SqlglotError as exc:
        return None, [SqlProblem(f"SQL does not parse: {exc}", "sql-syntax")]
    except RecursionError:
        return None, [_TOO_DEEP]
    if not statements:
        return None, [SqlProblem("the SQL is empty", "sql-syntax")]
    if len(statements) > 1:
        line, col = _second_statement(tokens)
        return None, [SqlProblem(f"exactly one statement is allowed, found {len(statements)}",
                                 "sql-single-statement", line, col)]
    return statements[0], []


def read_only_problems(statement: exp.Expr, catalog: DeclaredSchema | None = None
                       ) -> list[SqlProblem]:
    """Everything in the tree that writes, locks, creates, changes settings or reaches out;
    user-defined functions only when the catalog declares them safe."""
    safe = catalog.safe_functions if catalog else frozenset()
    declared = catalog.functions if catalog else frozenset()
    path = catalog.search_path if catalog else ()
    problems: list[SqlProblem] = []
    if not isinstance(statement, exp.Query) or isinstance(statement, exp.Values):
        label = _FORBIDDEN_NODES.get(type(statement), "only a SELECT query is allowed")
        problems.append(SqlProblem(f"not a read-only query: {label}", "sql-read-only",
                                   *_pos(statement)))
        return problems
    for node in statement.walk():
        kind = type(node)
        if kind in _FORBIDDEN_NODES:
            problems.append(SqlProblem(f"not a read-only query: {_FORBIDDEN_NODES[kind]}",
                                       "sql-read-only", *_pos(node)))
        elif isinstance(node, exp.Func):
            name = _function_name(node)
            why = _function_problem(name)
            if isinstance(node.parent, exp.Dot) and node.parent.expression is node:
                continue  # schema.function(): checked with the Dot
            user = next((f"{s}.{name}" for s in path if f"{s}.{name}" in declared), None)
            if user is not None and user not in safe:
                problems.append(_unsafe_function(user, node))
                continue
            if why:
                problems.append(SqlProblem(f"function {name}() is not allowed in a report: "
                                           f"it {why}", "sql-read-only", *_pos(node)))
        elif isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
            schema = node.this.name if isinstance(
                node.this, exp.Identifier | exp.Var | exp.Column) else ""
            function = f"{schema}.{_function_name(node.expression)}"
            if function in safe:
                continue
            if function in declared:
                problems.append(_unsafe_function(function, node))
            elif schema.lower() != "pg_catalog":
                problems.append(SqlProblem(
                    f"call to {node.sql(dialect='postgres').split('(')[0]}(): user-defined "
                    "functions can write or reach outside; only built-in functions are allowed",
                    "sql-read-only", *_pos(node)))
        elif isinstance(node, exp.Table) and node.args.get("catalog"):
            problems.append(SqlProblem(f"{node.sql(dialect='postgres')} names another "
                                       "database; reports read only this one", "sql-read-only",
                                       *_pos(node)))
    return problems


def _unsafe_function(name: str, node: exp.Expr) -> SqlProblem:
    return SqlProblem(f"function {name}() is not declared safe: only immutable or stable "
                      "functions that are not SECURITY DEFINER, or those listed in "
                      "reports.safe_functions, may be called", "sql-read-only", *_pos(node))


def _token_positions(tokens: list[Token]
                     ) -> tuple[dict[str, tuple[int, int]], list[tuple[int, int]]]:
    """Where each :name and each positional $n / ? sits in the text (the tree has no positions)."""
    named: dict[str, tuple[int, int]] = {}
    positional: list[tuple[int, int]] = []
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        start = (token.line, max(1, token.col - len(token.text) + 1))
        if token.token_type == sqlglot.TokenType.COLON and following is not None:
            named.setdefault(following.text, start)
        elif token.token_type in (sqlglot.TokenType.PARAMETER, sqlglot.TokenType.PLACEHOLDER):
            positional.append(start)
    return named, positional


def parameter_refs(tokens: list[Token], statement: exp.Expr
                   ) -> tuple[dict[str, tuple[int, int]], list[SqlProblem]]:
    """Named parameters (:name) used, with their first position; positional ones are refused."""
    named, positional = _token_positions(tokens)
    found: dict[str, tuple[int, int]] = {}
    problems: list[SqlProblem] = []
    for node in statement.find_all(exp.Placeholder, exp.Parameter):
        name = node.name if isinstance(node, exp.Placeholder) else ""
        if not name:
            line, col = positional.pop(0) if positional else (1, 1)
            problems.append(SqlProblem("positional parameters ($1, ?) are not supported: use "
                                       "named ones such as :period_start", "sql-parameters",
                                       line, col))
            continue
        found.setdefault(name, named.get(name, (1, 1)))
    return found, problems


def _cte_names(statement: exp.Expr) -> set[str]:
    return {cte.alias_or_name for cte in statement.find_all(exp.CTE)}


def own_cte_names(sql: str) -> set[str]:
    """Names of the CTEs a query defines itself; empty when it does not parse."""
    statement, _ = parse_single(sql)
    return _cte_names(statement) if statement is not None else set()


def table_problems(statement: exp.Expr, catalog: DeclaredSchema) -> list[SqlProblem]:
    """Every table read must be declared; sqlglot's qualifier would let unknown ones pass."""
    problems: list[SqlProblem] = []
    ctes = _cte_names(statement)
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a set-returning function in FROM, checked with the functions
        name, schema = table.name, table.db
        if not schema:
            if name in ctes:
                continue
            on_path = [s for s in catalog.search_path if catalog.has_table(s, name)]
            if on_path:
                # As PostgreSQL does: the first schema on the path that has it.
                table.set("db", exp.to_identifier(on_path[0]))
                if len(on_path) > 1:
                    problems.append(SqlProblem(
                        f"table '{name}' is ambiguous: it is in {', '.join(on_path)} on the "
                        f"search_path and PostgreSQL reads {on_path[0]}.{name}; qualify it",
                        "sql-ambiguous-table", *_pos(table)))
                continue
            where = catalog.schemas_with_table(name)
            path = ", ".join(catalog.search_path) or "empty"
            hint = (f"; did you mean {where[0]}.{name}?" if len(where) == 1 else
                    f"; it exists in {', '.join(where)}" if where else "")
            problems.append(SqlProblem(f"unknown table '{name}': not in any schema on the "
                                       f"search_path ({path}); qualify it (schema.table)"
                                       f"{hint}", "sql-unknown-table", *_pos(table)))
        elif not catalog.has_table(schema, name):
            problems.append(SqlProblem(_unknown_table(catalog, schema, name),
                                       "sql-unknown-table", *_pos(table)))
    return problems


def _unknown_table(catalog: DeclaredSchema, schema: str, name: str) -> str:
    from difflib import get_close_matches

    if schema not in catalog.tables:
        close = get_close_matches(schema, list(catalog.tables), n=1)
        hint = f"; did you mean {close[0]}.{name}?" if close else ""
        return f"unknown table {schema}.{name}: no schema '{schema}' is declared in schema/{hint}"
    close = get_close_matches(name, list(catalog.tables[schema]), n=1)
    hint = f"; did you mean {schema}.{close[0]}?" if close else ""
    return f"unknown table {schema}.{name}: not declared in schema/{schema}.yaml{hint}"


def _find_column(statement: exp.Expr, name: str) -> exp.Column | None:
    for column in statement.find_all(exp.Column):
        if column.name == name and column.table:
            return column
    return None


def _source_for(scope: Scope, alias: str) -> exp.Table | Scope | None:
    current: Scope | None = scope
    while current is not None:
        if alias in current.sources:
            source = current.sources[alias]
            return source if isinstance(source, exp.Table | Scope) else None
        current = current.parent
    return None


def _scope_outputs(scope: Scope) -> list[str]:
    expression = scope.expression
    if isinstance(expression, exp.Query):
        return list(expression.named_selects)
    return []


def _candidates(scope: Scope, name: str, catalog: DeclaredSchema) -> list[str]:
    found = []
    for alias, source in scope.sources.items():
        if isinstance(source, exp.Table):
            if name in catalog.columns(source.db, source.name):
                found.append(alias)
        elif isinstance(source, Scope) and name in _scope_outputs(source):
            found.append(alias)
    return found


def _column_hint(name: str, known: list[str]) -> str:
    from difflib import get_close_matches

    from engine.dbschema.pgnames import ident

    folded = [c for c in known if c.lower() == name.lower()]
    if folded:
        return (f"; did you mean {ident(folded[0])}? (a mixed-case name must be quoted)")
    close = get_close_matches(name, known, n=1)
    return f"; did you mean {ident(close[0])}?" if close else ""


def column_problems(scopes: list[Scope], catalog: DeclaredSchema,
                    analysis: SqlAnalysis) -> list[SqlProblem]:
    """Unknown and ambiguous columns; records every (schema, table, column) read."""
    problems: list[SqlProblem] = []
    for scope in scopes:
        for column in scope.columns:
            if not column.table:
                here = _candidates(scope, column.name, catalog)
                outer = scope.parent
                while not here and outer is not None:
                    here = _candidates(outer, column.name, catalog)
                    outer = outer.parent
                if len(here) > 1:
                    problems.append(SqlProblem(
                        f"column '{column.name}' is ambiguous: it is in "
                        f"{', '.join(sorted(here))}; qualify it (alias.{column.name})",
                        "sql-ambiguous-column", *_pos(column)))
                elif not here:
                    if any(isinstance(s, exp.Table) and not catalog.has_table(s.db, s.name)
                           for s in scope.sources.values()):
                        continue  # it may be in the unknown table, reported already
                    tables = ", ".join(sorted(
                        qualified(s.db, s.name) for s in scope.sources.values()
                        if isinstance(s, exp.Table))) or "no table"
                    known = [c for s in scope.sources.values() if isinstance(s, exp.Table)
                             for c in catalog.columns(s.db, s.name)]
                    known += [c for s in scope.sources.values() if isinstance(s, Scope)
                              for c in _scope_outputs(s)]
                    problems.append(SqlProblem(
                        f"unknown column '{column.name}' (reading {tables})"
                        f"{_column_hint(column.name, known)}",
                        "sql-unknown-column", *_pos(column)))
                continue
            source = _source_for(scope, column.table)
            if isinstance(source, exp.Table) and catalog.has_table(source.db, source.name):
                if column.name not in catalog.columns(source.db, source.name):
                    known = list(catalog.columns(source.db, source.name))
                    problems.append(SqlProblem(
                        f"unknown column {source.db}.{source.name}.{column.name}"
                        f"{_column_hint(column.name, known)}",
                        "sql-unknown-column", *_pos(column)))
                else:
                    analysis.columns.add((source.db, source.name, column.name))
    return problems


def _exposed(expression: exp.Expr, scope: Scope, depth: int = 0) -> Iterator[ColumnRef]:
    """Base columns whose individual values can appear in `expression`'s result."""
    if depth > 32:
        return
    for column in expression.find_all(exp.Column):
        if _hidden(column, expression):
            continue
        source = _source_for(scope, column.table) if column.table else None
        if isinstance(source, exp.Table):
            yield (source.db, source.name, column.name)
        elif isinstance(source, Scope):
            yield from _exposed_output(source, column.name, depth + 1)


def _hidden(column: exp.Column, root: exp.Expr) -> bool:
    """Whether only a count, sum or condition of the column's values reaches `root`'s result:
    inside an opaque aggregate, its FILTER clause, or a CASE condition."""
    child: exp.Expr = column
    node = column.parent
    while node is not None:
        if isinstance(node, _OPAQUE_AGGREGATES):
            return True
        if isinstance(node, exp.Filter) and isinstance(node.this, _OPAQUE_AGGREGATES):
            return True
        if isinstance(node, exp.If) and node.this is child:
            return True
        if node is root:
            return False
        child, node = node, node.parent
    return False


def _exposed_output(scope: Scope, name: str, depth: int,
                    index: int | None = None) -> Iterator[ColumnRef]:
    expression = scope.expression
    if index is None and isinstance(expression, exp.Query):
        names = list(expression.named_selects)
        index = names.index(name) if name in names else None
    if isinstance(expression, exp.SetOperation):
        for branch in scope.set_operation_scopes:
            yield from _exposed_output(branch, name, depth + 1, index)
        return
    if isinstance(expression, exp.Select) and index is not None \
            and index < len(expression.selects):
        yield from _exposed(expression.selects[index], scope, depth)


_TOO_DEEP = SqlProblem("the SQL is nested too deeply to check; flatten it (a CTE per level)",
                       "sql-too-large")


def analyze(sql: str, catalog: DeclaredSchema) -> SqlAnalysis:
    """Parse, check and trace one report query against the catalog; never raises."""
    try:
        return _analyze(sql, catalog)
    except RecursionError:
        return SqlAnalysis(problems=[_TOO_DEEP])


def _analyze(sql: str, catalog: DeclaredSchema) -> SqlAnalysis:
    analysis = SqlAnalysis()
    try:
        tokens = _DIALECT.tokenize(sql) if len(sql) <= MAX_SQL_CHARS else None
    except (TokenError, RecursionError):
        tokens = None
    statement, problems = parse_single(sql, tokens)
    if statement is None or tokens is None:
        analysis.problems = problems
        return analysis
    # PostgreSQL folds unquoted names to lower case; quoted ones ("Album") keep theirs.
    statement = normalize_identifiers(statement, dialect="postgres")
    analysis.problems.extend(read_only_problems(statement, catalog))
    analysis.parameters, parameter_problems = parameter_refs(tokens, statement)
    analysis.problems.extend(parameter_problems)
    unknown_tables = table_problems(statement, catalog)
    analysis.problems.extend(unknown_tables)
    # Columns are checked even when a table is unknown: every problem in one run.
    for table in statement.find_all(exp.Table):
        if table.db and catalog.has_table(table.db, table.name):
            analysis.tables.add((table.db, table.name))
    try:
        # In place: the parsed tree is not needed unqualified afterwards.
        qualified = qualify(statement, schema=catalog.mapping(), dialect="postgres",
                            validate_qualify_columns=False, identify=False,
                            quote_identifiers=False)
    except OptimizeError as exc:
        text = str(exc)
        position = (1, 1)
        if text.startswith("Unknown column: "):
            column = _find_column(statement, text.removeprefix("Unknown column: ").strip())
            if column is not None:
                position = _pos(column)
                text = f"Unknown column {column.table}.{column.name}"
                source = next((t for t in statement.find_all(exp.Table)
                               if t.alias_or_name == column.table and t.db), None)
                if source is not None:
                    known = list(catalog.columns(source.db, source.name))
                    text = (f"Unknown column {source.db}.{source.name}.{column.name}"
                            f"{_column_hint(column.name, known)}")
        analysis.problems.append(SqlProblem(text[0].lower() + text[1:], "sql-unknown-column",
                                            *position))
        return analysis
    scopes = traverse_scope(qualified)
    analysis.problems.extend(column_problems(scopes, catalog, analysis))
    if analysis.problems:
        return analysis
    root = scopes[-1]
    analysis.outputs = _scope_outputs(root)
    for name in analysis.outputs:
        analysis.exposed[name] = set(_exposed_output(root, name, 0))
    return analysis

"""Parameter types shared by the `marketops` command modules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click


class _Instant(click.ParamType[datetime]):
    """An ISO 8601 time (without an offset it is read as UTC), or `now`."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from datetime import UTC

        if isinstance(value, datetime):
            return value
        if str(value).strip().lower() == "now":
            from engine.app import clock

            return clock.now()
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"'{value}' is not an ISO 8601 time such as 2026-03-01T06:00+01:00 "
                      "(or `now`)",
                      param, ctx)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


INSTANT = _Instant()


def complete_job(ctx: click.Context, param: click.Parameter, incomplete: str
                 ) -> list[click.shell_completion.CompletionItem]:
    """Job ids for shell completion, from the file names under definitions/ (no validation:
    a tab press must answer at once, even while a definition is broken)."""
    from pathlib import Path

    from click.shell_completion import CompletionItem

    root = Path(ctx.find_root().params.get("root") or ".")
    found = [f"{kind}/{path.stem}" for kind, folder in (("report", "reports"),
                                                          ("backup", "backups"))
             for path in sorted((root / "definitions" / folder).glob("*.yaml"))]
    return [CompletionItem(job) for job in found if job.startswith(incomplete)]


def complete_target(ctx: click.Context, param: click.Parameter, incomplete: str
                    ) -> list[click.shell_completion.CompletionItem]:
    """The targets marketops.yaml declares, for shell completion of --target."""
    from pathlib import Path

    from click.shell_completion import CompletionItem

    from engine.definitions.loader import settings_doc
    from engine.definitions.targets import declared

    doc = settings_doc(Path(ctx.params.get("root") or "."), [])
    return [CompletionItem(name) for name in sorted(declared(doc)) if name.startswith(incomplete)]

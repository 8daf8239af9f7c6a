"""Rows a test generates for the independent report checks, and the arithmetic they compare
the engine's figures with."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


@dataclass
class World:
    """Rows to insert, by table, as column -> value dicts."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, table: str, **values: Any) -> dict[str, Any]:
        self.rows[table].append(values)
        return values

    def of(self, table: str) -> list[dict[str, Any]]:
        return self.rows.get(table, [])


def rnd(value: Decimal, places: int) -> Decimal:
    """Half away from zero (decimal's ROUND_HALF_UP rounds away from zero)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def money(r: random.Random, low: int, high: int) -> Decimal:
    """An amount in whole cents between `low` and `high`."""
    return Decimal(r.randint(low * 100, high * 100)) / 100

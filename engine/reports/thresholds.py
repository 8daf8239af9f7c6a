"""Report alert thresholds: whether an output value crosses one (policy, not I/O: the report
runner calls it on each row as the rows stream past)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Threshold:
    """A threshold on an output column; `when` is any_row or all_rows."""

    name: str
    column: str
    op: str
    value: float
    when: str
    message: str

    def crossed(self, value: Any) -> bool:
        if value is None or isinstance(value, str):
            return False
        number = float(value)
        return {">": number > self.value, ">=": number >= self.value,
                "<": number < self.value, "<=": number <= self.value,
                "==": number == self.value, "!=": number != self.value}[self.op]

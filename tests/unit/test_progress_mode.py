"""When long steps show progress: a bar for a person at a terminal, lines in the service's log,
nothing for a script reading a command's stderr (pgBackRest's and dbt's default)."""

from __future__ import annotations

import pytest

from runners.service.progress import mode_for


@pytest.mark.parametrize("term", ["xterm", "xterm-256color", "screen", ""])
def test_a_terminal_gets_a_live_bar(term: str) -> None:
    assert mode_for(stderr_is_terminal=True, term=term, service_logging=False) == "bar"


@pytest.mark.parametrize("term", ["xterm", "dumb", ""])
def test_off_a_terminal_a_command_says_nothing_extra(term: str) -> None:
    assert mode_for(stderr_is_terminal=False, term=term, service_logging=False) == "off"


def test_a_dumb_terminal_cannot_draw_a_bar_and_gets_nothing_extra() -> None:
    assert mode_for(stderr_is_terminal=True, term="dumb", service_logging=False) == "off"


@pytest.mark.parametrize("terminal", [True, False])
def test_the_services_log_carries_progress_lines_wherever_it_goes(terminal: bool) -> None:
    # Its JSON log must stay parseable line by line, so no bar even on a terminal.
    assert mode_for(stderr_is_terminal=terminal, term="xterm", service_logging=True) == "log"

"""Every log line the test run produces, for the end-of-run secret check in conftest.py.

A module of its own: pytest imports conftest.py as `conftest` while tests import it as
`tests.conftest`, which would give two separate lists.
"""

from __future__ import annotations

import io

SESSION_OUTPUT: list[str] = []


def record_output(text: str) -> None:
    """Add output (of a daemon process, or a log stream) to what the secret check reads."""
    SESSION_OUTPUT.append(text)


class Sink(io.StringIO):
    """A log stream whose every write also goes to SESSION_OUTPUT."""

    def write(self, text: str) -> int:
        SESSION_OUTPUT.append(text)
        return super().write(text)

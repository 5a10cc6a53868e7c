"""`Call`: one planned provider request, a plain frozen value produced by the planner."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scheduler.domain import CST


@dataclass(frozen=True)
class Call:
    key: str  # idempotency key: recording / window start / chunk index / action
    at: datetime  # the instant to send it (aware)
    start: datetime  # start of the span this task records
    deadline: datetime  # end of that span: sending at or after this is pointless
    recording: str
    provider: str  # provider name in the YAML
    action: str  # API action, e.g. "Live_Tape_Start"
    target: str  # provider target: two calls to it within 3 s may create a duplicate task
    params: tuple[tuple[str, str], ...]  # every API parameter except t and sign, in order
    chunk: int  # 1-based index of this chunk in its window
    chunks: int  # how many chunks the window has
    window_start: datetime
    window_end: datetime
    #: Web calls: the request's Data as JSON text, with "{task_id}" / "{token}" placeholders
    #: filled when it is sent (`params` is empty then).
    data: str = ""
    #: Web calls other than Start: the key of the Start whose TaskID this call acts on.
    needs: str = ""

    def param(self, name: str) -> str:
        return dict(self.params).get(name, "")

    def to_json(self) -> dict[str, Any]:
        """The `recsched plan --json` contract: keep these keys stable."""
        shown: dict[str, Any] = {
            "at": self.at.astimezone(CST).isoformat(),
            "recording": self.recording,
            "provider": self.provider,
            "action": self.action,
            "key": self.key,
            "params": dict(self.params),
        }
        if self.data:
            shown["params"] = {"Action": self.action, "Data": json.loads(self.data)}
        if self.needs:
            shown["task_of"] = self.needs  # whose TaskID fills "{task_id}"
        return shown

"""`Call`: one planned provider request, a plain frozen value produced by the planner.

A tagged union, one class per provider kind: `LvbCall` (its API parameters), `WebCall` (the
request's JSON Data, and the Start whose TaskID it acts on) and `LiveCall` (its JSON body).
What they share (the key, the instants, the span, the target, the chunk and the window) is
`BaseCall`'s; code that needs a provider's fields narrows with isinstance or match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from scheduler.domain import CST


@dataclass(frozen=True, kw_only=True)
class BaseCall:
    """The fields every provider's call has; the dispatcher and the ledger read only these."""

    key: str  # idempotency key: recording / window start / chunk index / action
    at: datetime  # the instant to send it (aware)
    start: datetime  # start of the span this task records
    deadline: datetime  # end of that span: sending at or after this is pointless
    recording: str
    provider: str  # provider name in the YAML
    action: str  # API action, e.g. "Live_Tape_Start"
    target: str  # provider target: two calls to it within 3 s may create a duplicate task
    chunk: int  # 1-based index of this chunk in its window
    chunks: int  # how many chunks the window has
    window_start: datetime
    window_end: datetime

    def _shown(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "at": self.at.astimezone(CST).isoformat(),
            "recording": self.recording,
            "provider": self.provider,
            "action": self.action,
            "key": self.key,
            "params": params,
        }

    def _task_fields(self) -> dict[str, Any]:
        """A web or LIVE API 3.0 call's log fields: a task of a window."""
        return {
            "recording": self.recording,
            "provider": self.provider,
            "action": self.action,
            "task": f"{self.chunk}/{self.chunks}",
            "scheduled_at": self.at.astimezone(CST).isoformat(),
            "call_key": self.key,
        }


#: object.__setattr__, once: frozen dataclasses set their fields through it.
_SET = object.__setattr__


@dataclass(frozen=True, kw_only=True, init=False)
class LvbCall(BaseCall):
    """A Live_Tape_Start of the LVB API: a signed GET of `params`.

    Its `__init__` is the frozen dataclass's own (one `object.__setattr__` per field, in field
    order, so instances keep sharing their dicts' keys) in half the time: a 48-hour plan of
    10,000 recordings makes 24,000 of them (docs/benchmarks.md). Writing the fields with one
    `__dict__.update` was faster still but cost 8 MB more per 24,000 calls (dicts that no
    longer share keys). tests/test_calls.py holds it to the generated one."""

    params: tuple[tuple[str, str], ...]  # every API parameter except t and sign, in order

    def __init__(
        self,
        *,
        key: str,
        at: datetime,
        start: datetime,
        deadline: datetime,
        recording: str,
        provider: str,
        action: str,
        target: str,
        chunk: int,
        chunks: int,
        window_start: datetime,
        window_end: datetime,
        params: tuple[tuple[str, str], ...],
    ) -> None:
        put = _SET  # the frozen dataclass's own __init__ looks it up again for each field
        put(self, "key", key)
        put(self, "at", at)
        put(self, "start", start)
        put(self, "deadline", deadline)
        put(self, "recording", recording)
        put(self, "provider", provider)
        put(self, "action", action)
        put(self, "target", target)
        put(self, "chunk", chunk)
        put(self, "chunks", chunks)
        put(self, "window_start", window_start)
        put(self, "window_end", window_end)
        put(self, "params", params)

    def param(self, name: str) -> str:
        return dict(self.params).get(name, "")

    def to_json(self) -> dict[str, Any]:
        """The `recsched plan --json` contract: keep these keys stable."""
        return self._shown(dict(self.params))

    def log_fields(self) -> dict[str, Any]:
        """The fields every log line about this call carries."""
        return {
            "recording": self.recording,
            "provider": self.provider,
            "action": self.action,
            "channel_id": self.param("Param.s.channel_id"),
            "chunk": f"{self.chunk}/{self.chunks}",
            "scheduled_at": self.at.astimezone(CST).isoformat(),
            "end_time": self.param("Param.s.end_time"),
            "call_key": self.key,
        }


@dataclass(frozen=True, kw_only=True)
class WebCall(BaseCall):
    """A call of the web-page recording function: a signed POST of `data`."""

    #: The request's Data as JSON text, with "{task_id}" / "{token}" placeholders filled when
    #: it is sent.
    data: str
    #: Every action but Start: the key of the Start whose TaskID this call acts on ("" for a
    #: Start).
    needs: str = ""

    def to_json(self) -> dict[str, Any]:
        """The `recsched plan --json` contract: keep these keys stable."""
        shown = self._shown({"Action": self.action, "Data": json.loads(self.data)})
        if self.needs:
            shown["task_of"] = self.needs  # whose TaskID fills "{task_id}"
        return shown

    def log_fields(self) -> dict[str, Any]:
        """The fields every log line about this call carries."""
        return self._task_fields()


@dataclass(frozen=True, kw_only=True)
class LiveCall(BaseCall):
    """A LIVE API 3.0 call (CreateRecordTask, StopRecordTask, DeleteRecordTask): a signed JSON
    POST of `data`."""

    data: str  # the request's body as JSON text

    def to_json(self) -> dict[str, Any]:
        """The `recsched plan --json` contract: keep these keys stable."""
        return self._shown({"Action": self.action, "Data": json.loads(self.data)})

    def log_fields(self) -> dict[str, Any]:
        """The fields every log line about this call carries."""
        return self._task_fields()


#: One planned call of any provider.
Call: TypeAlias = LvbCall | WebCall | LiveCall

"""Sending one planned call: the no-duplicate rules, retries and the outcome log line.

Rules, in order, each time a call fires:
1. a key already in flight in this process, or with a final outcome in the ledger, is never
   sent again (`call.duplicate_suppressed`);
2. a key the ledger shows `sent` with no answer was interrupted by a crash: the provider most
   likely created the task, so it is recorded `uncertain` and not re-sent, unless the provider
   sets `resend_after_crash` (then it is re-sent once the 3 s duplicate window has passed);
   either way `call.uncertain` is logged. A key only `claimed` never reached the wire: it is sent;
3. a call whose chunk is over is not sent (`call.missed`);
4. a call to a target that another call hit less than 3 s ago, for an overlapping span of
   time, is suppressed: the provider may create a duplicate task (`call.duplicate_suppressed`).
   Back-to-back chunks of one window do not overlap, so timer jitter between them (3 s chunks
   fired 2.998 s apart) never drops a chunk. It is checked at the call's instant, after its
   claim: the engine hands calls over early (`fire(early=True)`) so that their claims are
   durable before the instant, and the 3 s are between send times;
5. otherwise it is claimed (durably), marked `sent` (durably) and sent; transient failures are
   retried at least `retry_spacing` (>= 3 s) apart, a bounded number of times, never so late
   that the retry would land inside the duplicate window of the chunk's end. `ret != 0` is
   never retried. A success is recorded once no other request awaits its answer, at most
   0.5 s later (wire.py: in a burst, the requests still queued go first).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from scheduler import rules
from scheduler.calls import Call
from scheduler.clock import wall_clock
from scheduler.config import CST, DUPLICATE_WINDOW, Config
from scheduler.errors import ProviderError, TransientError
from scheduler.ledger import Entry, Ledger, State
from scheduler.limits import Limiter
from scheduler.logs import get_logger, register_secret
from scheduler.metrics import Metrics
from scheduler.release import Release
from scheduler.senders import Context, Sender, Senders
from scheduler.store import StoreError
from scheduler.transport import Transport
from scheduler.wire import Wire

log = get_logger("recsched.call")
#: A watched call is looked at again this long after its holder's lease ends.
LEASE_SLACK_S = 0.05
#: How long past the provider timeout a `sent` call stays leased to its sender.
SEND_LEASE_MARGIN_S = 5.0


class LeaseLost(ProviderError):
    """Not sent: while this instance waited (paused?), a peer took the call over."""


class ChunkOver(ProviderError):
    """Not sent: the chunk ended while the call waited for the provider's limiter or the
    ledger; the provider would refuse it (end_time passed) or record nothing."""


def _ms(delta: timedelta) -> int:
    return round(delta.total_seconds() * 1000)


def _cst(moment: datetime) -> str:
    return moment.astimezone(CST).isoformat(timespec="milliseconds")


class Dispatcher:
    """Sends each planned call under the rules every provider shares (the module's docstring);
    what a request is and what an unknown outcome means are the senders' (senders.py), which
    `senders` builds from this dispatcher's Context, one per provider type."""

    def __init__(
        self,
        config: Config,
        transport: Transport,
        ledger: Ledger,
        *,
        senders: Senders,
        dry_run: bool = False,
        clock: Callable[[], datetime] = wall_clock,
        monotonic: Callable[[], float] = time.monotonic,
        until: Callable[[datetime], Awaitable[None]] | None = None,
        metrics: Metrics | None = None,
        wire: Wire | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.transport = transport
        self.ledger = ledger
        self.dry_run = dry_run
        self.clock = clock
        self.monotonic = monotonic
        #: The wait of an early call for its instant (release.py: one timer per instant).
        self._until = until or Release(clock).until
        self._last_hit: dict[str, tuple[float, Call]] = {}  # target -> (monotonic, last call)
        self._in_flight: set[str] = set()
        #: Requests awaiting their answer; an answer is recorded once none does (wire.py).
        self.wire = wire or Wire()
        self._limiters: dict[str, Limiter] = {}
        self.use(config)
        self._closing = asyncio.Event()
        context = Context(
            ledger=ledger,
            transport=transport,
            clock=clock,
            config=lambda: self.config,
            outcome=self._outcome,
            slot=self._slot,
            metrics=self.metrics,
            closing=self._closing,
        )
        #: Each provider type's sender (`lvb`, `web`, `live`).
        self.senders: Mapping[str, Sender] = senders(context)

    def _sender(self, call: Call) -> Sender:
        """The sender of the call's provider type."""
        return self.senders[self.config.providers[call.provider].type]

    def _slot(self, provider: str) -> AbstractAsyncContextManager[None]:
        return self._limiters[provider].slot()

    def stop_polling(self) -> None:
        """The daemon is stopping: long waits (Describe polls) end now and resume after the
        restart."""
        self._closing.set()

    def use(self, config: Config) -> None:
        """Send later calls with `config`'s providers (a reload); calls in flight keep theirs."""
        self.config = config
        self._limiters = {
            name: self._limiters.get(name) or Limiter(p.concurrency, p.rate)
            for name, p in config.providers.items()
        }
        for provider in config.providers.values():
            for secret in provider.secret_values():
                register_secret(secret)

    def _reserve_target(self, call: Call) -> str | None:
        """Mark `call.target` as hit now; return the key of a call that hit it < 3 s ago for
        an overlapping span (a would-be duplicate task), if any."""
        now = self.monotonic()
        hit = self._last_hit.get(call.target)
        if hit is not None:
            at, other = hit
            recent = now - at < DUPLICATE_WINDOW.total_seconds()
            overlaps = other.start < call.deadline and call.start < other.deadline
            if recent and overlaps and other.key != call.key:
                return other.key
        self._last_hit[call.target] = (now, call)
        return None

    def _outcome(self, call: Call, state: State) -> State:
        self.metrics.call_outcome(call.provider, call.action, state)
        return state

    def _not_again(self, call: Call, fields: dict[str, Any], reason: str) -> None:
        self.metrics.duplicate_suppressed(call.provider)
        log.info("call.duplicate_suppressed", **fields, reason=reason)

    async def fire(self, call: Call, *, early: bool = False) -> State:
        """Send `call` at most once; return the state it ended in.

        `early`: the engine hands the call over before its instant (engine.STAGE_LEAD). It is
        admitted and claimed (durably) at once and sent at `call.at`, not before: the claims of
        a burst are then written before its instant instead of between it and the requests."""
        fields = call.log_fields()
        if call.key in self._in_flight:
            self._not_again(call, fields, "already in flight")
            return State.SENT
        self._in_flight.add(call.key)
        try:
            return await self._fire(call, fields, early)
        except StoreError as exc:
            log.error(
                "call.failed",
                **fields,
                retryable=False,
                reason="ledger unreachable",
                message=f"{exc}: with a shared ledger nothing is sent that a peer might own",
            )
            return self._outcome(call, State.FAILED)
        finally:
            self._in_flight.discard(call.key)

    async def _record(self, call: Call, entry: Entry | None, state: State, detail: str) -> bool:
        """Claim (if new) and record a final state without sending; False if someone else has
        the key."""
        now = self.clock()
        if entry is None and not await self.ledger.claim(call, now):
            return False
        await self.ledger.update(call.key, state, now, detail=detail)
        return True

    async def _fire(self, call: Call, fields: dict[str, Any], early: bool) -> State:
        fresh = False  # claimed here for the first time (not taken over or recovered)
        while True:  # each round re-reads the ledger: a peer may have moved the call on
            entry = await self.ledger.get(call.key)
            held = None
            if entry is not None and entry.state in (State.CLAIMED, State.SENT):
                held = await self.ledger.peer_lease(call.key)
            now = self.clock()
            decision = rules.admit(entry, held[1] if held else None, now, call.deadline)
            if decision == rules.Admit.WATCH:
                assert held is not None
                await self._wait_for_peer(call, fields, *held)
                continue
            if decision == rules.Admit.TAKE_OVER:
                assert entry is not None
                if not await self.ledger.take_over(call.key):
                    continue  # a peer took it over or settled it first: look again
                if entry.owner and entry.owner != self.ledger.owner:
                    log.warning(
                        "call.taken_over",
                        **fields,
                        previous_owner=entry.owner,
                        state=str(entry.state),
                        reason="its lease expired with no outcome",
                    )
                if entry.state == State.SENT:
                    return await self._after_crash(call, entry, fields)
                if self.clock() >= call.deadline:
                    await self.ledger.update(
                        call.key, State.MISSED, self.clock(), detail="chunk over"
                    )
                    log.error("call.missed", **fields, reason="claimed but never sent")
                    return self._outcome(call, State.MISSED)
                log.info("call.recovered", **fields, reason="claimed but never sent")
                break
            if decision == rules.Admit.SETTLED:
                assert entry is not None
                self._not_again(call, fields, f"already {entry.state}")
                return entry.state
            if decision == rules.Admit.MISSED:
                if await self._record(call, None, State.MISSED, "chunk over"):
                    log.error("call.missed", **fields, lateness_ms=_ms(now - call.at))
                    self._outcome(call, State.MISSED)
                return State.MISSED
            if await self.ledger.claim(call, now):
                fresh = True
                break
            # lost the claim (a peer, or the target's 3 s window): the next round says which
        if early:
            if call.at > self.clock() and not self.dry_run:  # a late call: signed at its send
                self._sender(call).prepare(call)
            await self._until(call.at)
        # the 3 s rule is about send times: it is checked at the instant, after any early claim
        previous = self._reserve_target(call) if fresh else None
        if previous is not None:
            await self.ledger.update(call.key, State.SUPPRESSED, self.clock(), detail=previous)
            self.metrics.duplicate_suppressed(call.provider)
            self._outcome(call, State.SUPPRESSED)
            log.warning(
                "call.duplicate_suppressed",
                **fields,
                reason="same target within 3s",
                previous_call_key=previous,
            )
            return State.SUPPRESSED
        if self.dry_run:
            await self.ledger.update(call.key, State.OK, self.clock(), detail="dry run")
            log.info("call.dry_run", **fields, params=call.to_json()["params"])
            return State.OK
        settled = await self._sender(call).before(call, fields)
        if settled is not None:
            return settled
        return await self._send(call, fields, attempt=0, uncertain=False)

    async def _wait_for_peer(
        self, call: Call, fields: dict[str, Any], peer: str, seconds: float
    ) -> None:
        """Watch a call a live peer holds until its lease ends, however late that is: if the
        peer died, its call is settled here (taken over: `uncertain` when it was `sent`,
        `missed` when it never was), not left `sent` until some later start-up. A `sent`
        lease lasts the request timeout + 5 s, often longer than a short chunk."""
        log.info(
            "call.claimed_by_peer",
            **fields,
            owner=peer,
            watching=True,
            recheck_in_s=round(seconds, 3),
        )
        await asyncio.sleep(seconds + LEASE_SLACK_S)

    async def _after_crash(self, call: Call, entry: Entry, fields: dict[str, Any]) -> State:
        """`sent` but unanswered when its owner died: the provider's sender decides (look the
        task up, record it uncertain, or send again)."""
        sent_at = entry.sent_at or entry.updated_at or self.clock()
        facts = {"attempt": entry.attempts, "sent_at": _cst(sent_at)}
        settled = await self._sender(call).after_crash(call, entry, fields, facts)
        if settled is not None:
            return settled
        return await self._send(call, fields, attempt=entry.attempts, uncertain=True)

    async def _attempt(
        self, call: Call, fields: dict[str, Any], attempt: int, uncertain: bool
    ) -> tuple[dict[str, Any], float, str | ProviderError]:
        """One request, made once the provider's limiter lets it go (so `sent_at` is the real
        send time). Returns (timing fields, monotonic start, task id or the error)."""
        provider = self.config.providers[call.provider]
        sent_at = self.clock()
        started = self.monotonic()
        if sent_at >= call.deadline.replace(microsecond=0):  # end_time is in whole seconds
            return {"attempt": attempt}, started, ChunkOver("chunk over while waiting")
        self._last_hit[call.target] = (started, call)
        request = await self._sender(call).request(call, sent_at)
        if isinstance(request, ProviderError):
            return {"attempt": attempt}, started, request
        # durably `sent` before the request exists: a crash from here on is uncertain. In a
        # shared ledger this is also the fence: it fails if a peer has taken the call over.
        if not await self.ledger.mark_sent(
            call.key,
            sent_at,
            attempts=attempt,
            uncertain=uncertain,
            hold_s=provider.timeout.total_seconds() + SEND_LEASE_MARGIN_S,
        ):
            return {"attempt": attempt}, started, LeaseLost("taken over by another instance")
        timing = {
            "attempt": attempt,
            "sent_at": _cst(sent_at),
            "lateness_ms": _ms(sent_at - call.at),
        }
        # written once no other request awaits its answer, and before any other line about
        # this call (wire.py): a burst's 1,000 lines no longer lie between it and its requests
        write_sent = self.wire.later(lambda: log.info("call.sent", **fields, **timing))
        if attempt == 1:
            self.metrics.call_lateness(call.provider, (sent_at - call.at).total_seconds())
        try:
            with self.wire.request():
                return timing, started, await request()
        except BaseException as exc:  # a failure's line, a retry's, a stop: after call.sent
            write_sent()
            if isinstance(exc, ProviderError):
                return timing, started, exc
            raise

    async def _send(
        self, call: Call, fields: dict[str, Any], *, attempt: int, uncertain: bool
    ) -> State:
        provider = self.config.providers[call.provider]
        spacing = provider.retry_spacing.total_seconds()
        first_sent: datetime | None = None
        while True:
            attempt += 1
            async with self._limiters[call.provider].slot():
                timing, started, result = await self._attempt(call, fields, attempt, uncertain)
            latency = self._since(started)
            first_sent = first_sent or self.clock() - timedelta(milliseconds=latency)
            if isinstance(result, LeaseLost):
                log.error("call.lease_lost", **fields, **timing, message=result.message)
                return State.CLAIMED
            if isinstance(result, ChunkOver):
                await self.ledger.update(
                    call.key, State.MISSED, self.clock(), detail=result.message
                )
                late = _ms(self.clock() - call.at)
                reason = "chunk over while the call waited its turn"
                log.error("call.missed", **fields, lateness_ms=late, reason=reason)
                return self._outcome(call, State.MISSED)
            if isinstance(result, str):
                await self.wire.quiet()  # requests still on the wire go first (wire.py)
                await self.ledger.update(call.key, State.OK, self.clock(), task_id=result)
                log.info("call.ok", **fields, **timing, latency_ms=latency, ret=0, task_id=result)
                return self._outcome(call, State.OK)
            if not isinstance(result, TransientError):
                await self.ledger.update(
                    call.key, State.FAILED, self.clock(), detail=result.message
                )
                log.error(
                    "call.failed",
                    **fields,
                    **timing,
                    latency_ms=latency,
                    retryable=False,
                    ret=result.ret,
                    status=result.status,
                    message=result.message,
                )
                return self._outcome(call, State.FAILED)
            if result.outcome_unknown:
                facts = {**timing, "latency_ms": latency, "error": result.message}
                settled, unknown = await self._sender(call).on_unknown(
                    call, fields, facts, first_sent
                )
                uncertain = uncertain or unknown
                if settled is not None:
                    return settled
            again = rules.retry(
                attempt, provider.max_attempts, self.clock(), provider.retry_spacing, call.deadline
            )
            if again.at is not None:
                log.warning(
                    "call.retry",
                    **fields,
                    **timing,
                    latency_ms=latency,
                    status=result.status,
                    message=result.message,
                    retry_in_s=spacing,
                )
                self.metrics.retry(call.provider)
                await asyncio.sleep(spacing)
                continue
            await self.ledger.update(
                call.key, State.FAILED, self.clock(), detail=result.message, uncertain=uncertain
            )
            log.error(
                "call.failed",
                **fields,
                **timing,
                latency_ms=latency,
                retryable=True,
                status=result.status,
                message=result.message,
                reason=again.reason,
            )
            return self._outcome(call, State.FAILED)

    def _since(self, started: float) -> int:
        return round((self.monotonic() - started) * 1000)

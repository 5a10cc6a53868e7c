"""The benchmark's schedules, as YAML `recordings:` lists plus the calls expected at the fake.

Every call that should reach the fake during a run is a `Shot`: its planned instant and the
(channel, start_time) pair it carries on the wire, which identifies it at the fake. Channels
are distinct per recording, so the 3 s duplicate rule never suppresses a benchmark call.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bench.common import CST, iso, wire


@dataclass(frozen=True)
class Shot:
    at: datetime  # planned send instant (aware)
    channel: str
    start: str  # Param.s.start_time on the wire
    end: str  # Param.s.end_time on the wire
    sub_type: str = "1"


@dataclass
class Workload:
    recordings: str  # the YAML `recordings:` items
    shots: list[Shot]  # the calls expected at the fake during the run, by planned instant
    count: int  # recordings in the file

    def planned(self) -> dict[tuple[str, str], float]:
        return {(s.channel, s.start): s.at.timestamp() for s in self.shots}


def _one_off(name: str, channel: str, start: datetime, duration: str) -> str:
    return (
        f"  - name: {name}\n"
        f"    channel_id: {channel}\n"
        f'    start: "{iso(start)}"\n'
        f"    duration: {duration}\n"
    )


def precision(t0: datetime, n: int = 200, spread_s: float = 60.0, seed: int = 7) -> Workload:
    """n one-off real-time recordings, each starting at a random millisecond in
    [t0, t0 + spread_s) (the config reader takes ISO 8601 times with fractions)."""
    rng = random.Random(seed)
    text, shots = [], []
    for i in range(n):
        at = t0 + timedelta(milliseconds=rng.randrange(int(spread_s * 1000)))
        channel = f"bench_p{i:04d}"
        text.append(_one_off(f"p{i:04d}", channel, at, "10m"))
        shots.append(Shot(at, channel, wire(at), wire(at + timedelta(minutes=10))))
    shots.sort(key=lambda s: s.at)
    return Workload("".join(text), shots, n)


def burst(t0: datetime, n: int) -> Workload:
    """n one-off real-time recordings whose (only) chunk starts at the same whole second."""
    t0 = t0.replace(microsecond=0)
    text, shots = [], []
    for i in range(n):
        channel = f"bench_b{i:05d}"
        text.append(_one_off(f"b{i:05d}", channel, t0, "10m"))
        shots.append(Shot(t0, channel, wire(t0), wire(t0 + timedelta(minutes=10))))
    return Workload("".join(text), shots, n)


# -- scale: 10,000 recordings ---------------------------------------------------------------
CRON_SHAPES = (
    "{m} {h} * * *",
    "{m} {h} * * 1-5",
    "{m} {h} * * 0,6",
    "{m} {h} 1,15 * 0",
    "{m} {h} */2 * *",
)


def _cron(rng: random.Random, now: datetime) -> tuple[int, int]:
    """A time of day 2 h to 16 h from now (CST): no window of the previous day is still open
    and none starts while the benchmark runs."""
    moment = now.astimezone(CST) + timedelta(minutes=rng.randrange(120, 16 * 60))
    return moment.minute, moment.hour


def _days(rng: random.Random, today: date, k: int) -> str:
    picks = sorted({today + timedelta(days=rng.randrange(2, 60)) for _ in range(k)})
    return "[" + ", ".join(d.isoformat() for d in picks) + "]"


def _scale_cron(i: int, rng: random.Random, now: datetime, scheduled: bool) -> str:
    minute, hour = _cron(rng, now)
    expr = rng.choice(CRON_SHAPES).format(m=minute, h=hour)
    lines = [f"  - name: c{i:05d}", f"    channel_id: bench_c{i:05d}", f'    cron: "{expr}"']
    if i == 0:  # the one the reload test edits: daily, one 30-minute chunk, 2 calls in 48 h
        lines[2] = f'    cron: "{minute} {hour} * * *"'
        return "\n".join([*lines, "    duration: 30m"]) + "\n"
    if scheduled:
        lines += [
            "    mode: scheduled",
            f"    duration: {rng.choice((1, 2, 4, 6))}h",
            f"    lead: {rng.choice((1, 5, 10))}m",
        ]
    else:
        lines.append(f"    duration: {rng.choice(('30m', '1h', '90m', '2h'))}")
        if rng.random() < 0.2:
            lines += ["    chunk: 20m", "    min_chunk: 10m"]
    today = now.astimezone(CST).date()
    roll = rng.random()
    if roll < 0.15:
        lines.append(f"    skip_dates: {_days(rng, today, 3)}")
    elif roll < 0.25:
        lines.append(f"    extra_dates: {_days(rng, today, 2)}")
    elif roll < 0.35:
        lines.append(f"    from: {today.isoformat()}")
        lines.append(f"    until: {(today + timedelta(days=90)).isoformat()}")
    if rng.random() < 0.3:
        lines.append("    file_format: hls")
    return "\n".join(lines) + "\n"


def _scale_one_off(i: int, rng: random.Random, now: datetime) -> str:
    start = (now + timedelta(minutes=rng.randrange(120, 7 * 24 * 60))).replace(
        second=0, microsecond=0
    )
    scheduled = rng.random() < 0.4
    text = _one_off(f"o{i:05d}", f"bench_o{i:05d}", start, "3h" if scheduled else "90m")
    return text + ("    mode: scheduled\n" if scheduled else "")


def scale(
    now: datetime,
    t0: datetime,
    *,
    recordings: int = 10_000,
    firing: int = 1000,
    chunks: int = 10,
    chunk_s: int = 10,
    seed: int = 11,
) -> Workload:
    """`recordings` recordings: 40 % cron real-time, 20 % cron scheduled, the rest one-off
    (real-time and scheduled, up to a week ahead), of which `firing` real-time windows of
    `chunks` chunks of `chunk_s` seconds start staggered over [t0, t0 + chunk_s): they make
    firing * chunks calls at the fake, evenly spread over chunks * chunk_s seconds."""
    rng = random.Random(seed)
    rest = recordings - firing
    n_cron_rt, n_cron_sched = int(rest * 0.4), int(rest * 0.2)
    parts: list[str] = []
    for i in range(rest):
        if i < n_cron_rt:
            parts.append(_scale_cron(i, rng, now, scheduled=False))
        elif i < n_cron_rt + n_cron_sched:
            parts.append(_scale_cron(i, rng, now, scheduled=True))
        else:
            parts.append(_scale_one_off(i, rng, now))
    shots: list[Shot] = []
    step = timedelta(seconds=chunk_s)
    for i in range(firing):
        start = t0 + timedelta(milliseconds=round(i * chunk_s * 1000 / firing))
        channel = f"bench_f{i:04d}"
        parts.append(
            _one_off(f"f{i:04d}", channel, start, f"{chunks * chunk_s}s")
            + f"    chunk: {chunk_s}s\n"
        )
        for k in range(chunks):
            at = start + k * step
            shots.append(Shot(at, channel, wire(at), wire(at + step)))
    shots.sort(key=lambda s: s.at)
    return Workload("".join(parts), shots, recordings)


def change_one(text: str) -> str:
    """The same schedule with one recording's channel changed (the reload test): its 2 armed
    calls change, nothing else."""
    old = "    channel_id: bench_c00000\n"
    assert old in text
    return text.replace(old, "    channel_id: bench_c00000_moved\n", 1)

"""A reload reads again only the recordings whose text changed (config_reuse.py), and what it
gives is exactly what reading the whole file gives: the same `Config` (recordings, their
lines, warnings) or the same problems, whatever the edit. Checked against the full read over
random files and edits, including items that break the cut between recordings (unclosed
quotes and brackets), anchors, duplicate names and edits of the text around the list."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from scheduler.config import Config, parse_config
from scheduler.config_reuse import Shortened, layout
from scheduler.errors import ConfigError

ENV = {"LVB_KEY": "lvb-key-value", "WEB_APP_KEY": "APIDkey", "WEB_APP_SECRET": "web-secret"}
PROVIDERS = """\
providers:
  lvb: {appid: 1234, key: "${LVB_KEY}"}
  page:
    type: web
    endpoint: https://service-a.gz.apigw.tencentcs.com/release/record
    app_key: ${WEB_APP_KEY}
    app_secret: ${WEB_APP_SECRET}
"""
#: The text before the list: the same providers in two zones.
HEADS = [
    "timezone: Asia/Shanghai\n" + PROVIDERS,
    "# the same providers, another zone\ntimezone: America/New_York\n" + PROVIDERS,
]
#: The list's key, bare or with a comment and a blank line (with the items at the margin).
LIST = ["recordings:\n", "recordings:   # every window\n\n"]
HTTP = "http: {listen: '127.0.0.1:8080', public_url: 'https://rec.example.com'}\n"
TAILS = [
    "",
    "daemon:\n  horizon: 24h\n" + HTTP,
    "\ndaemon:\n  horizon: 36h\nhttp: {}\n",  # no callbacks possible
    "...\n",
    HTTP + "daemon: {horizon: 30h}\n",
]


def item(first: str, *rest: str, dash: str = "  - ", indent: str = "    ") -> str:
    """One list item's text: its first line after the dash, the others indented."""
    return dash + first + "\n" + "".join(f"{indent}{line}\n" for line in rest)


LVB = ("channel_id: c{n}", "provider: lvb")
#: Recordings that read cleanly ({n}: a number making the name unique).
GOOD = [
    item("name: r{n}", *LVB, 'cron: "0 9 * * 1-5"', "duration: 1h"),
    item("name: o{n}", *LVB, "start: 2027-01-05 10:00", "duration: 90m"),
    item("{{name: f{n}, channel_id: c{n}, provider: lvb, cron: '30 20 * * *', duration: 2h}}"),
    item("{{name: m{n}, channel_id: c{n}, provider: lvb,", " cron: '0 8 * * 6', duration: 1h}}"),
    item("name: d{n}", "enabled: false", *LVB, "cron: '0 7 * * *'", "duration: 1h"),
    "  -\n" + item("name: s{n}", *LVB, "cron: '15 6 * * *'", "duration: 30m", dash="    "),
    "  # a comment before it\n\n"
    + item("name: p{n}", *LVB, "path: /rec", "  /more", "cron: '0 1 * * *'", "duration: 1h"),
    item("name: w{n}", "provider: page", "url: https://example.com/?a=1&b={n}",
         "start: 2027-01-05 10:00", "duration: 10m"),
    item('name: q{n}', 'channel_id: "c{n}"', "provider: lvb", 'start: "2027-01-05 11:00"',
         'end: "2027-01-05 12:00"'),
    item("name: cb{n}", "provider: page", "url: https://example.com/{n}", "callback: true",
         "start: 2027-01-05 10:00", "duration: 10m"),  # needs the tail's http settings
]  # fmt: skip
CALLBACK = 9
#: Recordings that warn, fail, or could break the cut between items.
ODD = [
    item("name: x{n}", *LVB, "cron: '0 9 * * *'", "duration: 1h", "skip_dates: [2027-01-06]",
         "extra_dates: [2027-01-06]"),  # a warning
    item("name: u{n}", *LVB, "cron: '0 9 * * *'", "duration: 1h", "colour: red"),
    item("name: b{n}", *LVB, "cron: '0 99 * * *'", "duration: 1h"),
    item('name: "unclosed{n}'),  # a quote running into the next item
    item("{{name: k{n}, channel_id: c{n}, provider: lvb,"),  # a bracket, likewise
    item("name: r0", *LVB, "cron: '0 5 * * *'", "duration: 1h"),  # r0 again
    item("&a{n} {{name: a{n}, channel_id: c{n}, provider: lvb, cron: '0 3 * * *', duration: 1h}}"),
    item("name: t{n}", *LVB, "cron: '0 9 * * *'", "\tduration: 1h", indent="    "),
    item("name: i{n}", *LVB, "cron: '0 9 * * *'", "duration: 1h", dash=" - ", indent="   "),
    item("plain text {n}"),
    item("{{name: g{n}, channel_id: c{n}, provider: lvb, cron: '0 3 * * *', duration: 1h,"
         ' path: "a'),  # a quote that the next item but one closes …
    item('b"}}'),  # … here: the items between are text of g's path
]  # fmt: skip


def build(head: str, items: list[str], tail: str, flush: bool) -> str:
    body = "".join(items)
    if flush:  # the list's items at the left margin: "- name: …"
        lines = body.splitlines(True)
        body = "".join(line[2:] if line.startswith("  ") else line for line in lines)
    return head + LIST[flush] + body + tail


def read(text: str, previous: Config | None = None) -> Config | list[str]:
    try:
        source = previous.source if previous is not None else None
        return parse_config(text, "s.yaml", env=ENV, previous=source, reusable=True)
    except ConfigError as exc:
        return [str(p) for p in exc.problems]


def same(reused: Config | list[str], whole: Config | list[str]) -> None:
    assert type(reused) is type(whole)
    if isinstance(reused, Config):
        assert isinstance(whole, Config)
        assert reused == whole
        assert [r.line for r in reused.recordings] == [r.line for r in whole.recordings]
        assert reused.warnings == whole.warnings
    else:
        assert reused == whole


edit = st.tuples(
    st.sampled_from(["replace", "insert", "delete", "swap", "odd"]),
    st.integers(0, 40),
    st.integers(0, len(GOOD) - 1),
    st.integers(0, len(ODD) - 1),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.lists(st.integers(0, len(GOOD) - 1), min_size=1, max_size=12),
    edits=st.lists(st.lists(edit, min_size=1, max_size=3), min_size=1, max_size=3),
    head=st.integers(0, len(HEADS) - 1),
    heads=st.lists(st.integers(0, 7), min_size=3, max_size=3),  # mostly the first head
    tails=st.lists(st.integers(0, 9), min_size=3, max_size=3),  # and mostly the 2nd tail
    flush=st.booleans(),
)
@example(  # an item inserted above: every later recording's line moves
    base=[0, 1, 2, 3], edits=[[("insert", 0, 6, 0)]], head=0, heads=[0, 0, 0],
    tails=[1, 1, 1], flush=False,
)  # fmt: skip
@example(  # a quote left open runs into the next, unchanged, item
    base=[0, 1, 0], edits=[[("odd", 1, 0, 3)]], head=0, heads=[0, 0, 0],
    tails=[0, 0, 0], flush=False,
)  # fmt: skip
@example(  # a recording that warns is read again, so its warning is given again
    base=[0, 1], edits=[[("odd", 1, 0, 0)], [("replace", 0, 1, 0)]], head=0,
    heads=[0, 0, 0], tails=[1, 1, 1], flush=False,
)  # fmt: skip
@example(  # an open quote closed two items further: the item between is part of a value
    base=[1, 1, 1],
    edits=[[("odd", 1, 0, 10), ("odd", 3, 0, 11)], [("replace", 0, 1, 0)]],
    head=0, heads=[0, 0, 0], tails=[1, 1, 1], flush=False,
)  # fmt: skip
@example(  # the http settings after the list go: a callback recording cannot be reused
    base=[0, CALLBACK], edits=[[("replace", 0, 1, 0)]], head=0, heads=[0, 0, 0],
    tails=[2, 1, 1], flush=False,
)  # fmt: skip
@example(  # the zone changes: no recording may be reused
    base=[1, 1], edits=[[("replace", 0, 0, 0)]], head=0, heads=[1, 1, 1],
    tails=[0, 0, 0], flush=True,
)  # fmt: skip
def test_reused_read_is_the_full_read(
    base: list[int],
    edits: list[list[tuple[str, int, int, int]]],
    head: int,
    heads: list[int],
    tails: list[int],
    flush: bool,
) -> None:
    counter = iter(range(1000))
    items = [GOOD[g].format(n=next(counter)) for g in base]
    heads = [h if h < len(HEADS) else head for h in heads]
    tails = [t if t < len(TAILS) else 1 for t in tails]
    previous = read(build(HEADS[head], items, TAILS[1], flush))  # http: callbacks work
    assert isinstance(previous, Config)
    for round_, changes in enumerate(edits):
        for op, at, good, odd in changes:
            at %= len(items) + 1
            fresh = GOOD[good].format(n=next(counter))
            if op == "replace" and at < len(items):
                items[at] = fresh
            elif op == "insert":
                items.insert(at, fresh)
            elif op == "delete" and len(items) > 1 and at < len(items):
                del items[at]
            elif op == "swap" and len(items) > 1:
                i, j = at % len(items), (at + 1) % len(items)
                items[i], items[j] = items[j], items[i]
            elif op == "odd":
                items.insert(at, ODD[odd].format(n=next(counter)))
        text = build(HEADS[heads[round_]], items, TAILS[tails[round_]], flush)
        reused, whole = read(text, previous), read(text)
        same(reused, whole)
        shortened = previous.source is not None and previous.source.shorten(text) is not None
        event(f"shortened: {shortened}")
        if isinstance(reused, Config):
            kept = any(a is b for a in reused.recordings for b in previous.recordings)
            event(f"applied, a recording object kept: {kept}")
            previous = reused
        # else: a rejected reload keeps the running config; the next edit starts from it


def test_one_edited_recording_is_the_only_one_read_again() -> None:
    items = [GOOD[0].format(n=n) for n in range(200)]
    old = read(build(HEADS[0], items, TAILS[1], False))
    assert isinstance(old, Config) and old.source is not None
    items[57] = items[57].replace("duration: 1h", "duration: 2h")
    items.insert(3, GOOD[1].format(n=999))  # and one new, above it: later lines move
    new = read(build(HEADS[0], items, TAILS[1], False), old)
    assert isinstance(new, Config)
    assert new == read(build(HEADS[0], items, TAILS[1], False))
    by_name = {r.name: r for r in old.recordings}
    same_object = [r for r in new.recordings if by_name.get(r.name) is r]
    assert len(same_object) == 3  # r0..r2: above the insertion, unchanged, not read again
    moved = [r for r in new.recordings[4:] if r.name != "r57"]
    shift = GOOD[1].count("\n")
    assert all(r.line == by_name[r.name].line + shift for r in moved)  # re-placed, not re-read
    assert next(r for r in new.recordings if r.name == "r57").duration.total_seconds() == 7200


def test_a_file_with_an_anchor_is_always_read_whole() -> None:
    items = [GOOD[0].format(n=n) for n in range(5)]
    items[2] = item("&b {name: r2, channel_id: c2, provider: lvb, cron: '0 9 * * *', duration: 1h}")
    old = read(build(HEADS[0], items, "", False))
    assert isinstance(old, Config) and old.source is None


def test_layout_refuses_what_it_cannot_cut() -> None:
    assert layout("recordings: []\n") is None
    assert layout("recordings:\n  - a\n recordings_too: 1\n") is None
    assert layout("recordings:\n\t- a\n") is None
    assert layout("recordings:\r\n  - a\r\n") is None
    cut = layout("x: 1\nrecordings:\n  - a\n  - b: [1,\n      2]\n  -\n    c: 3\nd: 4\n")
    assert cut is not None
    assert cut.items == ("  - a\n", "  - b: [1,\n      2]\n", "  -\n    c: 3\n")
    assert cut.lines == (3, 4, 6) and cut.tail == "d: 4\n" and cut.tail_line == 8


def test_a_changed_directive_reads_every_recording_again() -> None:
    tagged = item("name: t1", "channel_id: !e!str c1", "provider: lvb", "cron: '0 9 * * *'",
                  "duration: 1h")  # fmt: skip
    items = [GOOD[0].format(n=0), tagged]
    old = read(build("%TAG !e! tag:yaml.org,2002:\n---\n" + HEADS[0], items, TAILS[1], False))
    assert isinstance(old, Config) and old.recordings[1].channel_id == "c1"
    items[0] = GOOD[1].format(n=5)
    text = build("%TAG !e! tag:example.com,2026:\n---\n" + HEADS[0], items, TAILS[1], False)
    assert isinstance(read(text), list)  # !e!str is no longer a string: the file is invalid
    same(read(text, old), read(text))


def test_a_bug_in_the_shortcut_costs_time_not_the_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    items = [GOOD[0].format(n=n) for n in range(5)]
    old = read(build(HEADS[0], items, TAILS[1], False))
    assert isinstance(old, Config)
    items[1] = GOOD[1].format(n=9)
    text = build(HEADS[0], items, TAILS[1], False)

    def broken(self: Shortened, clean: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Shortened, "source", broken)
    assert read(text, old) == read(text)  # read whole instead

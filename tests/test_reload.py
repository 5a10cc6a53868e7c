"""SIGHUP against a running daemon: a broken file keeps every job, edits change exactly what
they say, a live recording is never cut short, and nothing is ever fired twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.config import CST
from scheduler.fakes.lvb import FakeLvb
from tests.daemon_process import DaemonProcess

pytestmark = pytest.mark.usefixtures("lvb_env")


def _cst(moment: datetime) -> str:
    return f"{moment.astimezone(CST):%Y-%m-%d %H:%M:%S}"


class Schedule:
    """A live recording (4 chunks of 3 s starting in 2 s) plus others an hour away."""

    def __init__(self, fake: FakeLvb, tmp_path: Path) -> None:
        self.live_start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        self.later = self.live_start + timedelta(hours=1)
        self.fake = fake
        self.path = tmp_path / "recsched.yaml"
        self.state = tmp_path / "state"

    def recording(self, name: str, start: datetime, chunks: int, channel: str = "") -> str:
        return (
            f"  - {{name: {name}, channel_id: '{channel or name}', start: '{_cst(start)}',"
            f" duration: {3 * chunks}s, chunk: 3s}}\n"
        )

    def write(self, *recordings: str) -> None:
        listed = "recordings:\n" + "".join(recordings) if recordings else "recordings: []\n"
        self.path.write_text(
            f"providers:\n  lvb: {{endpoint: '{self.fake.url}', appid: 1234,"
            " key: '${LVB_KEY}'}\n"
            f"state: {{url: 'sqlite:///{self.state}/recsched.db'}}\n{listed}"
        )

    def live(self) -> str:
        return self.recording("live", self.live_start, 4)


async def _reload(daemon: DaemonProcess, event: str) -> dict[str, object]:
    before = len(daemon.events(event))
    daemon.process.send_signal(1)  # SIGHUP
    return await daemon.wait_for(event, lambda e: daemon.events(event).index(e) >= before)


async def test_sighup_applies_exactly_the_edit_and_never_fires_twice(
    fake_lvb: FakeLvb, tmp_path: Path
) -> None:
    s = Schedule(fake_lvb, tmp_path)
    b = s.recording("b", s.later, 2)
    s.write(s.live(), b)
    daemon = await DaemonProcess.start(s.path)
    loaded = await daemon.wait_for("plan.loaded")
    assert loaded["calls"] == 6

    same = await _reload(daemon, "config.reloaded")  # (d) nothing changed
    assert (same["added"], same["removed"], same["changed"]) == (0, 0, 0)
    assert same["unchanged"] == 6

    s.path.write_text(s.path.read_text().replace("chunk: 3s}", "chunk: 45m}", 1))  # (a) broken
    rejected = await _reload(daemon, "config.rejected")
    assert any("recordings[0].chunk" in p and f"{s.path}:5:" in p for p in rejected["problems"])  # type: ignore[union-attr]

    s.write(s.live(), b, s.recording("c", s.later, 1))  # (b) one recording added
    added = await _reload(daemon, "config.reloaded")
    assert (added["added"], added["removed"], added["changed"]) == (1, 0, 0)

    s.write(s.live(), s.recording("c", s.later, 1))  # (c) one recording removed
    removed = await _reload(daemon, "config.reloaded")
    assert (removed["added"], removed["removed"], removed["changed"]) == (0, 2, 0)

    await fake_lvb.wait_for_requests(4, timeout=30)
    assert await daemon.terminate() == 0, daemon.stderr
    starts = [r.params["Param.s.start_time"] for r in fake_lvb.received]
    expected = [_cst(s.live_start + timedelta(seconds=3 * i)) for i in range(4)]
    assert starts == expected  # every live chunk exactly once, through four reloads
    assert not daemon.events("call.duplicate_suppressed")


async def test_editing_a_live_recording_keeps_its_running_task_and_re_arms_the_rest(
    fake_lvb: FakeLvb, tmp_path: Path
) -> None:
    s = Schedule(fake_lvb, tmp_path)
    s.write(s.live())
    daemon = await DaemonProcess.start(s.path)
    await daemon.wait_for("call.ok")  # chunk 1 is recording now
    s.write(s.recording("live", s.live_start, 4, channel="new-channel"))
    diff = await _reload(daemon, "config.reloaded")
    assert diff["changed"] == 3 and diff["removed"] == 0  # chunks 2-4 re-armed with the edit
    s.write()  # then remove the recording altogether, while chunk 2 may be live
    gone = await _reload(daemon, "config.reloaded")
    kept = await daemon.wait_for("recording.kept_running")
    assert kept["recording"] == "live"  # its running task is not cut short
    assert await daemon.terminate() == 0, daemon.stderr  # drains calls already fired
    assert gone["removed"] + len(fake_lvb.received) == 4  # nothing lost, nothing doubled
    channels = [r.params["Param.s.channel_id"] for r in fake_lvb.received]
    assert channels[0] == "live" and set(channels[1:]) <= {"new-channel"}


async def test_daemon_watch_reloads_an_edited_file_without_a_signal(
    fake_lvb: FakeLvb, tmp_path: Path
) -> None:
    s = Schedule(fake_lvb, tmp_path)
    s.write(s.recording("b", s.later, 2))
    s.path.write_text(s.path.read_text() + "daemon: {watch: true}\n")
    daemon = await DaemonProcess.start(s.path)
    await daemon.wait_for("plan.loaded")
    s.path.write_text(s.path.read_text().replace("duration: 6s", "duration: 9s"))
    await daemon.wait_for("config.changed")
    reloaded = await daemon.wait_for("config.reloaded")
    # a third chunk; the first two are re-armed (their window now ends later), none removed
    assert (reloaded["added"], reloaded["changed"], reloaded["removed"]) == (1, 2, 0)
    assert await daemon.terminate() == 0, daemon.stderr

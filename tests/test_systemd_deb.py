"""The Debian package under a real systemd: Debian 12's systemd 252 in a systemd-nspawn container.

The .deb is built once per run with Debian's own tools (packaging/build-deb.sh:
dpkg-buildpackage + debhelper) and installed in a fresh container the README's way, line by
line (its "Install the Debian package" block, the two `sudoedit` steps done by writing the
files). Then: the files and modes the package leaves, calls answered by a fake provider inside
the container, `systemctl reload`, an upgrade (`dpkg -i` of the package again: prerm upgrade,
postinst configure with the old version) that keeps the ledger and the schedule and restarts
the daemon, and `apt-get remove` / `apt-get purge` removing what the package created.

Needs what tests/test_systemd_real.py needs, plus dpkg-buildpackage and debhelper
(`apt-get install --no-install-recommends build-essential debhelper python3.11-venv`); with
RECSCHED_REQUIRE_NSPAWN=1 (.ci/run) a missing piece fails instead of skipping. Set
RECSCHED_DEB=path/to/recsched_*.deb to test a package built beforehand.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from scheduler.config import CST
from tests.systemd_real.machine import CannotBoot, Machine, build_image, why_not
from tests.test_systemd_real import (
    CHUNK_S,
    CONFIG,
    KEY_FILE,
    ROOT,
    UNIT,
    Rig,
    _cannot,
    _section,
    _yaml,
    follow_install,
)

#: Its own step (`pytest -m nspawn`): the default run, the README's test command, leaves it out.
pytestmark = [pytest.mark.nspawn, pytest.mark.timeout(1200)]
SECTION = "Install the Debian package"
STATE = "/var/lib/recsched"
LEDGER = f"{STATE}/recsched.db"


def deb_install_steps() -> list[str]:
    """The command lines of the README's Debian install block, comments dropped."""
    blocks = re.findall(r"```sh\n(.*?)```", _section(SECTION), re.S)
    install = [b for b in blocks if "apt install" in b]
    assert install, f"README: no ```sh block with `apt install` under '{SECTION}'"
    return [ln.strip() for ln in install[0].splitlines() if ln.strip() and ln[0] != "#"]


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("RECSCHED_DEB")
    if given:
        return Path(given)
    missing = [t for t in ("dpkg-buildpackage", "dh") if shutil.which(t) is None]
    if missing:
        _cannot(f"{' and '.join(missing)} missing (apt-get install build-essential debhelper)")
    assert "packaging/build-deb.sh" in _section(SECTION), "README: how to build the package"
    out = tmp_path_factory.mktemp("deb")
    done = subprocess.run(
        [str(ROOT / "packaging" / "build-deb.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"build-deb.sh failed:\n{done.stdout}\n{done.stderr}"
    (built,) = out.glob("recsched_*.deb")
    return built


class DebRig(Rig):
    def __init__(self, machine: Machine, key: str, fake_log: Path, deb: Path) -> None:
        super().__init__(machine, key, fake_log)
        self.deb = deb
        self.after_apt: dict[str, str] = {}

    def stat(self, *paths: str) -> list[str]:
        return self.m.sh(f"stat -c '%a %U:%G %n' {' '.join(paths)}").stdout.splitlines()

    def ledger_rows(self) -> int:
        out = self.m.sh(f"sudo -u recsched recsched status -c {CONFIG} --json").stdout
        rows: int = json.loads(out)["ledger"]["rows"]
        return rows


@pytest.fixture(scope="module")
def rig(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DebRig]:
    reason = why_not()
    if reason is not None:
        _cannot(reason)
    try:
        machine = Machine.boot(build_image())
    except CannotBoot as exc:
        _cannot(str(exc))
    try:
        shutil.copy(deb, machine.path(f"/root/{deb.name}"))
        key = f"nspawn-key-{secrets.token_hex(8)}"
        rig = DebRig(machine, key, tmp_path_factory.mktemp("nspawn-deb") / "fake.log", deb)
        try:
            yield _install(rig)
        finally:
            if rig.fake is not None:
                rig.fake.terminate()
                rig.fake.wait(timeout=10)
    finally:
        machine.destroy()


def _install(rig: DebRig) -> DebRig:
    """The README's Debian install block, line by line."""

    def run(step: str) -> None:
        # apt may need the Debian mirror (a missing dependency): every namespace but the network.
        is_apt = " install " in step and "apt" in step
        rig.m.sh(f"{step} </dev/null", cwd="/root", net=not is_apt, timeout=600)
        if is_apt:
            rig.after_apt = {
                "enabled": rig.m.sh(f"systemctl is-enabled {UNIT}", check=False).stdout.strip(),
                "active": rig.m.show(UNIT, "ActiveState"),
                "key": rig.m.sh(f"stat -c '%s %a %U:%G' {KEY_FILE}").stdout.strip(),
            }

    follow_install(rig, deb_install_steps(), "/usr/bin/recsched", run)
    return rig


def test_the_package_installs_but_does_not_start_the_service(rig: DebRig) -> None:
    assert rig.after_apt == {"enabled": "disabled", "active": "inactive", "key": "0 600 root:root"}


def test_the_package_leaves_the_files_with_their_modes(rig: DebRig) -> None:
    assert rig.stat("/etc/recsched", CONFIG, KEY_FILE) == [
        "750 root:recsched /etc/recsched",
        f"640 root:recsched {CONFIG}",
        f"600 root:root {KEY_FILE}",
    ]
    user = rig.m.sh("getent passwd recsched").stdout.strip().split(":")
    assert user[5:] == ["/nonexistent", "/usr/sbin/nologin"] and int(user[2]) < 1000
    assert rig.m.sh("readlink /usr/bin/recsched").stdout.strip() == "/opt/recsched/bin/recsched"
    assert rig.m.show(UNIT, "FragmentPath") == "/lib/systemd/system/recsched.service"
    assert "path=/usr/bin/recsched " in rig.m.show(UNIT, "ExecStart")
    conffiles = rig.m.sh("dpkg-query -W -f='${Conffiles}' recsched").stdout
    assert CONFIG in conffiles
    shipped = rig.m.sh("dpkg-deb --fsys-tarfile /root/*.deb | tar -xO ./etc/recsched/recsched.yaml")
    assert "key: ${cred:lvb_key}" in shipped.stdout and "\n# " in shipped.stdout
    version = rig.m.sh("recsched --version").stdout.strip()
    assert re.fullmatch(r"recsched \d+\.\d+\.\d+\S*", version)
    assert "/usr/share/doc/recsched/README.md" in rig.m.sh("recsched --help").stdout
    assert rig.m.path("/usr/share/doc/recsched/README.md").is_file()
    verify = rig.m.sh(f"systemd-analyze verify {UNIT}.service 2>&1", check=False).stdout
    assert UNIT not in verify, verify


def test_real_time_calls_are_answered(rig: DebRig) -> None:
    rig.wait_active()
    rig.m.wait("two chunks answered", lambda: len(rig.received()) >= 2, timeout=90)
    assert rig.events("call.ok")
    assert rig.m.show(UNIT, "User") == "recsched"


def test_reload_applies_a_good_edit(rig: DebRig) -> None:
    pid = rig.main_pid()
    soon = datetime.now(CST).replace(microsecond=0) + timedelta(seconds=8)
    extra = f"""\
  - name: extra
    channel_id: 8888_extra
    start: {soon:%Y-%m-%d %H:%M:%S}
    duration: {2 * CHUNK_S}s
    chunk: {CHUNK_S}s
"""
    rig.yaml = _yaml(rig.start, extra)
    rig.write_config(rig.yaml)
    done = rig.m.sh(f"systemctl reload {UNIT}", check=False)
    assert done.returncode == 0, done.stderr + rig.status()
    (reloaded,) = rig.events("config.reloaded")
    assert reloaded["added"] == 2
    assert rig.main_pid() == pid


def test_upgrade_keeps_the_ledger_and_the_schedule_and_restarts(rig: DebRig) -> None:
    pid = rig.main_pid()
    rows = rig.ledger_rows()
    assert rows > 0
    inode = rig.m.sh(f"stat -c %i {LEDGER}").stdout.strip()
    yaml = rig.m.path(CONFIG).read_text(encoding="utf-8")
    done = rig.m.sh(f"dpkg -i /root/{rig.deb.name} 2>&1", timeout=300)
    assert "Configuration file" not in done.stdout  # no conffile prompt for an edited schedule
    assert rig.m.path(CONFIG).read_text(encoding="utf-8") == yaml
    assert rig.stat("/etc/recsched", CONFIG, KEY_FILE) == [
        "750 root:recsched /etc/recsched",
        f"640 root:recsched {CONFIG}",
        f"600 root:root {KEY_FILE}",
    ]
    assert rig.m.path(KEY_FILE).read_text(encoding="utf-8") == rig.key + "\n"
    print(done.stdout, rig.status(), rig.journal("-n 40"), sep="\n")  # shown if it fails
    rig.m.wait(
        "the daemon restarted on the upgraded program",
        lambda: (
            rig.m.show(UNIT, "MainPID") not in ("0", str(pid))
            and rig.m.show(UNIT, "ActiveState") == "active"
        ),
        timeout=60,
    )
    assert rig.m.sh(f"stat -c %i {LEDGER}").stdout.strip() == inode
    assert rig.ledger_rows() >= rows
    assert rig.m.sh(f"systemctl is-enabled {UNIT}").stdout.strip() == "enabled"
    before = len(rig.received())
    rig.m.wait("a chunk after the upgrade", lambda: len(rig.received()) > before, 30)
    starts = [e["start_time"] for e in rig.received()]
    assert len(starts) == len(set(starts)), "a chunk reached the provider twice"


def test_remove_stops_it_and_keeps_the_config_then_purge_removes_everything(
    rig: DebRig,
) -> None:
    rig.m.sh("apt-get remove -y recsched </dev/null", net=False, timeout=300)
    assert rig.m.show(UNIT, "ActiveState") in ("inactive", "")
    assert not rig.m.path("/usr/bin/recsched").exists()
    assert rig.m.path(CONFIG).exists() and rig.m.path(KEY_FILE).exists()
    assert rig.m.path(LEDGER).exists()
    rig.m.sh("apt-get purge -y recsched </dev/null", net=False, timeout=300)
    for gone in ("/etc/recsched", STATE, "/opt/recsched", "/lib/systemd/system/recsched.service"):
        assert not rig.m.path(gone).exists(), f"{gone} left after purge"
    wants = rig.m.path("/etc/systemd/system/multi-user.target.wants/recsched.service")
    assert not wants.is_symlink(), "the enable symlink left after purge"
    assert rig.m.sh("dpkg-statoverride --list", check=False).stdout.count("recsched") == 0
    assert rig.m.sh("dpkg-query -W -f='${Status}' recsched", check=False).returncode != 0 or (
        "not-installed" in rig.m.sh("dpkg-query -W -f='${Status}' recsched", check=False).stdout
    )

"""A real systemd for tests: Debian 12's systemd booted as PID 1 of a systemd-nspawn container.

The root is a copy of the cached image (build-image.sh) in /var/tmp, so every run starts from
a fresh Debian with nothing installed; it is removed afterwards. The container has a private
network (loopback only): the service and the fake provider talk over its own 127.0.0.1. pip
runs in every namespace of the container but its network one, so it reaches the package index.
Nothing here touches the host's PID 1 or its services.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD_IMAGE = HERE / "build-image.sh"
#: The environment of every command run in the container: a clean root shell, no host variables
#: (the host's may hold proxies or paths that do not exist in there). PIP_CERT: this host reaches
#: the package index through a proxy whose CA the image trusts (build-image.sh).
SHELL_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "SYSTEMD_COLORS": "0",
    "SYSTEMD_PAGER": "",
    "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}
BOOT_TIMEOUT = 60.0
WORK_DIR = Path("/var/tmp")
PREFIX = "recsched-nspawn-"
PIP_CACHE = Path("/var/cache/recsched-ci/pip")


class CannotBoot(Exception):
    """This machine cannot boot a container (not root, no systemd-nspawn, no debootstrap)."""


def why_not() -> str | None:
    """Why a container cannot be booted here, or None if it can."""
    if os.geteuid() != 0:
        return "not root (systemd-nspawn needs root)"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install systemd-container debootstrap)"
    return None


def build_image() -> Path:
    done = subprocess.run(
        [str(BUILD_IMAGE)], capture_output=True, text=True, timeout=1800, check=False
    )
    if done.returncode != 0:
        raise CannotBoot(f"build-image.sh failed ({done.returncode}): {done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


class Machine:
    def __init__(self, root: Path, nspawn: subprocess.Popen[bytes], console: Path) -> None:
        self.root = root
        self.nspawn = nspawn
        self.console = console
        self.pid1 = 0

    @classmethod
    def boot(cls, image: Path) -> Machine:
        sweep_orphans()
        root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=str(WORK_DIR)))
        root.with_suffix(".owner").write_text(str(os.getpid()))
        subprocess.run(["cp", "-a", "--reflink=auto", f"{image}/.", str(root)], check=True)
        PIP_CACHE.mkdir(parents=True, exist_ok=True)
        console = root.with_suffix(".console")
        with console.open("wb") as out:
            nspawn = subprocess.Popen(
                [
                    "systemd-nspawn",
                    "-D",
                    str(root),
                    "--register=no",
                    "--keep-unit",
                    "--private-network",
                    "--boot",
                    "--console=read-only",
                    f"--bind={PIP_CACHE}:/root/.cache/pip",
                ],
                env={**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        machine = cls(root, nspawn, console)
        try:
            machine._wait_running()
        except BaseException:
            machine.destroy()
            raise
        return machine

    def _wait_running(self) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise CannotBoot(f"systemd-nspawn exited: {self.console.read_text()[-2000:]}")
            children = Path(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}/children")
            pids = children.read_text().split() if children.exists() else []
            if pids:
                self.pid1 = int(pids[0])
                state = self.sh("systemctl is-system-running", check=False, timeout=10)
                if state.stdout.strip() in ("running", "degraded"):
                    return
            time.sleep(0.2)
        raise CannotBoot(f"no running systemd after {BOOT_TIMEOUT:g} s")

    def _nsenter(self, net: bool) -> list[str]:
        spaces = ["-m", "-u", "-i", "-p", "-C", "-r", "-w"] + (["-n"] if net else [])
        return ["nsenter", "-t", str(self.pid1), *spaces]

    def sh(
        self,
        command: str,
        *,
        net: bool = True,
        check: bool = True,
        timeout: float = 120,
        cwd: str = "/",
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` with /bin/sh in the container as root; `net=False` keeps the host's
        network (for pip)."""
        done = subprocess.run(
            [*self._nsenter(net), "env", "-i", *_env_args(), "sh", "-c", f"cd {cwd} && {command}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            start_new_session=True,  # a stray `kill 0` in there cannot reach pytest
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"in the container, `{command}` exited {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def spawn(self, command: str, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start a long-running process in the container (outside systemd's units), its output
        in `log` on the host."""
        extra = [f"{k}={v}" for k, v in env.items()]
        with log.open("wb") as out:
            return subprocess.Popen(
                [*self._nsenter(True), "env", "-i", *_env_args(), *extra, "sh", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def path(self, inside: str) -> Path:
        """A container path as seen from the host."""
        return self.root / inside.lstrip("/")

    def show(self, unit: str, prop: str) -> str:
        return self.sh(f"systemctl show {unit} -p {prop} --value").stdout.strip()

    def wait(
        self, what: str, predicate: Callable[[], bool], timeout: float = 60.0, poll: float = 0.25
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(poll)

    def destroy(self) -> None:
        """Power the container off (SIGTERM to nspawn asks its systemd to shut down), then
        remove its root. Mounts nspawn made live in its own namespace and go with it."""
        if self.nspawn.poll() is None:
            os.killpg(self.nspawn.pid, signal.SIGTERM)
            try:
                self.nspawn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.nspawn.pid, signal.SIGKILL)
                self.nspawn.wait(timeout=30)
        mounted = [
            line.split()[1]
            for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(f"{self.root}/")
        ]
        for mount in sorted(mounted, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.root)], check=False)
        self.console.unlink(missing_ok=True)
        self.root.with_suffix(".owner").unlink(missing_ok=True)


def sweep_orphans() -> None:
    """Power off and remove containers whose test process died without cleaning up (killed):
    their nspawn still runs, but the PID in their .owner file is gone."""
    for owner in WORK_DIR.glob(f"{PREFIX}*.owner"):
        try:
            alive = Path(f"/proc/{int(owner.read_text())}").exists()
        except (OSError, ValueError):
            alive = False
        if alive:
            continue
        root = owner.with_suffix("")
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"systemd-nspawn") and str(root).encode() in argv:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGKILL)
        time.sleep(1)  # let the kernel tear its namespaces down
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)
        root.with_suffix(".console").unlink(missing_ok=True)
        owner.unlink(missing_ok=True)


def _env_args() -> list[str]:
    return [f"{k}={v}" for k, v in SHELL_ENV.items()]

"""Where the daemon keeps its files when the YAML does not say: the state directory (ledger,
lock) and the control socket (`recsched reload`).

Pure apart from one `stat`: the environment is passed in, so the daemon, `recsched status`
and `recsched reload` resolve the same paths from the same variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: What systemd's `StateDirectory=recsched` creates for the unit's user. Outside the unit
#: $STATE_DIRECTORY is not set, so the service user's own commands (`sudo -u recsched recsched
#: status`) find the unit's ledger here: the directory is used when the caller owns it.
SYSTEM_STATE_DIR = Path("/var/lib/recsched")
CONTROL_SOCKET_NAME = "control.sock"


def state_directory(env: Mapping[str, str], uid: int | None = None) -> Path:
    """$STATE_DIRECTORY (set by systemd inside the unit); else /var/lib/recsched when it
    exists and belongs to this user (the service user's shell); else $XDG_STATE_HOME/recsched
    or ~/.local/state/recsched."""
    directory = env.get("STATE_DIRECTORY", "").split(":")[0]
    if directory:
        return Path(directory)
    try:
        owner = SYSTEM_STATE_DIR.stat().st_uid
    except OSError:
        owner = None
    if owner is not None and owner == (os.geteuid() if uid is None else uid):
        return SYSTEM_STATE_DIR
    xdg = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "recsched"


def control_socket(env: Mapping[str, str]) -> Path:
    """$RECSCHED_CONTROL_SOCKET; else control.sock in $RUNTIME_DIRECTORY (systemd
    `RuntimeDirectory=`, set for ExecStart= and ExecReload= alike), in $XDG_RUNTIME_DIR/recsched,
    or in the state directory. Read from the environment only, never from the YAML: the
    client must find the daemon even when the file it is asked to reload is broken."""
    explicit = env.get("RECSCHED_CONTROL_SOCKET", "")
    if explicit:
        return Path(explicit)
    runtime = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return Path(runtime) / CONTROL_SOCKET_NAME
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg:
        return Path(xdg) / "recsched" / CONTROL_SOCKET_NAME
    return state_directory(env) / CONTROL_SOCKET_NAME

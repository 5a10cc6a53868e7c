"""A TCP port for a daemon to listen on, that no other test of the run can be handed meanwhile.

Binding port 0 and closing the socket names a free port, but the kernel may hand that same port
to anything else that binds port 0 or connects before the daemon binds it (a second or more
later, once it has started), and under pytest-xdist other workers do that all the time. Ports
below the ephemeral range (Linux: from 32768) are never handed out that way, so each worker
takes its own block of them, one after the other, skipping any a bind says is taken.
"""

from __future__ import annotations

import itertools
import os
import socket

#: Below Linux's default ephemeral range (32768-60999), which bind(0) and connect() draw from.
FIRST = 20000
BLOCK = 1000  # ports per xdist worker; 12 workers fit below 32768


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw3"; unset without xdist
    return int(worker.removeprefix("gw") or 0) % 12


#: Where this process starts in its block: another test run beside this one starts elsewhere.
_next = itertools.count(os.getpid() % BLOCK)


def free_port() -> int:
    """A port on 127.0.0.1 that is free now and is this worker's alone to hand out."""
    base = FIRST + _worker_index() * BLOCK
    for _ in range(BLOCK):
        port = base + next(_next) % BLOCK
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use (another program, or a port still in TIME_WAIT)
            return port
    raise RuntimeError(f"no free port in {base}-{base + BLOCK - 1}")

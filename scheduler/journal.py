"""Is a stream systemd's journal? A leaf with no logging framework, so that `recsched check`
and `plan` can prefix their warnings with a journal priority without loading structlog."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import TextIO


def is_journal(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is systemd's journal stream ($JOURNAL_STREAM names its device and
    inode, systemd.exec(5)): lines written there may carry an `<N>` priority prefix."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        info = os.fstat(stream.fileno())
        return (info.st_dev, info.st_ino) == (int(device), int(inode))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False

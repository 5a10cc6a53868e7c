"""Tiling a recording window into back-to-back pieces (LVB chunks, web tasks). Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduler.domain import REALTIME_MAX_CHUNK

Window = tuple[datetime, datetime]


def chunk_window(
    start: datetime,
    end: datetime,
    chunk: timedelta,
    min_chunk: timedelta,
    limit: timedelta = REALTIME_MAX_CHUNK,
) -> list[Window]:
    """Tile [start, end) with pieces of length `chunk`; a last piece shorter than `min_chunk`
    is merged into the one before it when the merged piece stays within `limit`."""
    pieces: list[Window] = []
    cursor = start
    while cursor < end:
        piece_end = min(cursor + chunk, end)
        pieces.append((cursor, piece_end))
        cursor = piece_end
    if len(pieces) >= 2:
        last_start, last_end = pieces[-1]
        prev_start, _ = pieces[-2]
        if last_end - last_start < min_chunk and last_end - prev_start <= limit:
            pieces[-2:] = [(prev_start, last_end)]
    return pieces

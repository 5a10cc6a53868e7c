"""Re-reading a large schedule: only the recordings whose text changed are read again.

A reload of a 10,000-recording file read and validated every recording again (0.4 s here) to
apply an edit of one. A `Source`, kept with the `Config` it gave, remembers each recording's
text beside the `Recording` read from it. The next read of the file (`shorten`) replaces the
text of every recording seen before with an empty placeholder of as many lines, reads that
shortened file as usual (so the other keys, every line number and every recording that did
change are read exactly as before), and puts the remembered recordings back in their places.

It is exact, or it is not used. A recording is remembered only if its text gave no problem
and no warning and it is not a LIVE API 3.0 recording (those are checked against each
other). The shortened read is used only if the file has no YAML anchor (an alias could reach
into a recording's text), the text before the list is unchanged (directives, zone and
providers), what a recording depends on besides its text (zone, provider names and types,
http settings) reads the same, and each list item starts where the text said it would.
Anything else, including any problem in the shortened read, falls back to the full read, so an
invalid file is reported exactly as a full read reports it. tests/test_config_reuse.py
compares both reads over random edits.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from scheduler.yamlstrict import Marks, has_anchor

#: The key that holds the list, alone on its line at the left margin.
_LIST_KEY = re.compile(r"^recordings:[ \t]*(?:#[^\n]*)?$", re.MULTILINE)
#: A line with content (not blank, not only a comment), and its indentation.
_CONTENT = re.compile(r"^( *)([^ #\n])", re.MULTILINE)
#: Line breaks other than "\n" (YAML 1.1 knows four more), a BOM and tabs: not split here.
_ODD = re.compile("[\r\x85\u2028\u2029\ufeff\t]")

Context = tuple[Any, ...]


@dataclass(frozen=True)
class Layout:
    """A file cut into the text before the list, one piece per list item and the text after."""

    head: str
    items: tuple[str, ...]
    lines: tuple[int, ...]  # 1-based line of each item's "-"
    tail: str
    tail_line: int  # 1-based line where the tail starts (0: no tail)
    indent: str  # the items' indentation

    def matches(self, value: object, marks: Marks) -> bool:
        """Whether a read of this text found one list item per piece, each starting in its
        piece, and the tail's first line as a top-level key (nothing ran across a cut)."""
        if not isinstance(value, dict) or not isinstance(value.get("recordings"), list):
            return False
        if len(value["recordings"]) != len(self.items):
            return False
        ends = (*self.lines[1:], self.tail_line or 1 << 62)
        for index, (first, end) in enumerate(zip(self.lines, ends, strict=True)):
            line = marks.get(("recordings", index), (0, 0))[0]
            if not first <= line < end:
                return False
        # the tail's first line holds a top-level key: nothing ran over from the last item
        return not self.tail_line or any(
            marks.get((key,), (0, 0))[0] == self.tail_line for key in value
        )


def layout(text: str) -> Layout | None:
    """Cut `text` at its list items, or None where a cut could be wrong (no block list under
    a `recordings:` line at the left margin, odd line breaks, tabs, uneven indentation)."""
    if _ODD.search(text):
        return None
    keys = list(_LIST_KEY.finditer(text))
    if len(keys) != 1:
        return None
    after = keys[0].end() + 1
    first = _CONTENT.search(text, after)
    if first is None or first.group(2) != "-":
        return None
    indent = first.group(1)
    width = len(indent)
    # Only lines indented no deeper than the items: item starts, the tail, or oddities.
    shallow = re.compile(rf"^( {{0,{width}}})([^ #\n])", re.MULTILINE)
    starts: list[int] = []
    tail_at = len(text)
    for match in shallow.finditer(text, first.start()):
        spaces, at = len(match.group(1)), match.start()
        dash = match.group(2) == "-" and text[at + spaces + 1 : at + spaces + 2] in ("", " ", "\n")
        if spaces == width and dash:
            starts.append(at)
        elif spaces == 0 and not dash:
            tail_at = at
            break
        else:
            return None  # neither an item nor a top-level key: let the full read judge it
    if not starts:
        return None
    lines: list[int] = []
    line, position = 1, 0
    for at in starts:
        line += text.count("\n", position, at)
        position = at
        lines.append(line)
    tail_line = line + text.count("\n", position, tail_at) if tail_at < len(text) else 0
    bounds = (*starts, tail_at)
    return Layout(
        head=text[: starts[0]],
        items=tuple(text[a:b] for a, b in pairwise(bounds)),
        lines=tuple(lines),
        tail=text[tail_at:],
        tail_line=tail_line,
        indent=indent,
    )


def _digest(item: str) -> bytes:
    """An item's text, as the key it is remembered by (16 bytes instead of the text: a large
    schedule's daemon keeps 10,000 of them)."""
    return hashlib.blake2b(item.encode(), digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class Kept:
    """A recording read from one item's text: the `Recording` (None: disabled) and its line
    less the item's first line."""

    recording: Any
    offset: int


@dataclass(frozen=True)
class Source:
    """What one read of the file learned that the next read may reuse."""

    head: str
    context: Context
    kept: Mapping[bytes, Kept] = field(repr=False)  # by _digest of the item's text

    def shorten(self, text: str) -> Shortened | None:
        """`text` with each remembered item replaced by a placeholder, or None when a
        shortened read could differ from a full one."""
        if has_anchor(text):
            return None
        cut = layout(text)
        if cut is None or cut.head != self.head:  # (directives, zone, providers)
            return None
        pieces = [cut.head]
        reused: dict[int, Kept] = {}
        placeholder = f"{cut.indent}- {{}}"
        for index, item in enumerate(cut.items):
            kept = self.kept.get(_digest(item))
            if kept is None:
                pieces.append(item)
                continue
            reused[index] = kept
            pieces.append(placeholder + "\n" * item.count("\n"))
        if not reused:
            return None
        pieces.append(cut.tail)
        return Shortened("".join(pieces), cut, reused, self.context)


@dataclass(frozen=True)
class Shortened:
    """A shortened text to read, and what to put back: the remembered recordings by index."""

    text: str
    layout: Layout  # of the whole text, whose lines the shortened one keeps
    reused: Mapping[int, Kept]
    context: Context

    def source(self, clean: Mapping[int, Any]) -> Source:
        """The `Source` of the whole text, once the shortened read succeeded: what it reused
        and the recordings it read again and found `clean`."""
        items = self.layout.items
        kept = {_digest(items[index]): kept for index, kept in self.reused.items()}
        return Source(self.layout.head, self.context, _remember(self.layout, clean, kept))


def source(
    text: str, value: object, marks: Marks, context: Context, clean: Mapping[int, Any]
) -> Source | None:
    """A `Source` of a successful read of `text` (the parsed `value` and its `marks`), with
    the recordings of the `clean` items (index -> Recording or None): None if there is
    nothing a later read could safely reuse."""
    if not clean or has_anchor(text):
        return None
    cut = layout(text)
    if cut is None or not cut.matches(value, marks):
        return None
    return Source(cut.head, context, _remember(cut, clean, {}))


def _remember(cut: Layout, clean: Mapping[int, Any], kept: dict[bytes, Kept]) -> dict[bytes, Kept]:
    """`kept`, plus each clean item's recording by its text, its line made relative."""
    for index, recording in clean.items():
        offset = recording.line - cut.lines[index] if recording is not None else 0
        kept.setdefault(_digest(cut.items[index]), Kept(recording, offset))
    return kept

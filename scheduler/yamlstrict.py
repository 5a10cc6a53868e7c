"""A strict YAML reader for hand-edited schedules.

PyYAML follows YAML 1.1, where `10:30` is the number 630, `0123` is 83, `no` is False and a
duplicate key silently wins. For a recording schedule each of those is a wrong recording, not an
error. This loader keeps only YAML-1.2-core scalars (true/false, null, decimal int, float);
everything else stays a string for the validator to judge. Duplicate keys are errors. Every value
keeps its position so later errors can name the file, line and column.
"""

from __future__ import annotations

import gc
import re
from typing import Any

import yaml

from scheduler.errors import Problem

Path = tuple[str | int, ...]
Marks = dict[Path, tuple[int, int]]  # key path -> (line, column), both 1-based


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML-1.2-core implicit types only."""


_StrictLoader.yaml_implicit_resolvers = {}
for _tag, _regex, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?$",
        "-+.0123456789",
    ),
):
    _StrictLoader.add_implicit_resolver(_tag, re.compile(_regex), list(_first))

_CSafeLoader: Any = getattr(yaml, "CSafeLoader", None)  # PyYAML built with libyaml
_FastLoader: Any = None
if _CSafeLoader is not None:

    class _FastStrictLoader(_CSafeLoader):  # type: ignore[misc]
        """libyaml's parser with the same YAML-1.2-core resolvers: composes a large schedule
        about 6x faster than the pure-Python parser, with less memory. It is only trusted
        when it succeeds on printable text; anything else is left to `_StrictLoader`, so
        errors keep their exact wording and position."""

    _FastStrictLoader.yaml_implicit_resolvers = _StrictLoader.yaml_implicit_resolvers
    _FastLoader = _FastStrictLoader


#: Text libyaml reads more leniently than PyYAML (tabs, `?` in flow collections, a BOM after
#: the start, characters PyYAML's reader rejects): such files go through the pure-Python loader.
_PYTHON_ONLY = re.compile(r"[\t?\ufeff]|" + yaml.reader.Reader.NON_PRINTABLE.pattern)


def _compose_fast(text: str) -> tuple[yaml.Node | None, Any] | None:
    """(node, loader) from libyaml, or None to let the pure-Python loader do it."""
    if _FastLoader is None or _PYTHON_ONLY.search(text):
        return None
    loader = _FastLoader(text)
    _free_as_converted(loader, text)
    try:
        return loader.get_single_node(), loader
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()


def load(text: str, filename: str) -> tuple[Any, Marks, list[Problem]]:
    """Parse `text`; return (value, marks, problems). On a syntax error value is None."""
    # A node tree holds no reference cycles worth collecting while it is built, yet its
    # thousands of container objects trigger ever longer collections (half the load time of
    # a 10,000-recording file): collect once, afterwards, instead.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(text, filename)
    finally:
        if enabled:
            gc.enable()


def _load(text: str, filename: str) -> tuple[Any, Marks, list[Problem]]:
    fast = _compose_fast(text)
    if fast is not None:
        value, marks, problems = _to_value(*fast, filename)
        if not problems:
            return value, marks, problems
        # problems quote the source text, which only the pure-Python marks carry
    loader = _StrictLoader(text)
    _free_as_converted(loader, text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        message = f"YAML syntax error: {exc.problem or exc.context}"
        return None, {}, [Problem(filename, line, col, "", message)]
    except yaml.YAMLError as exc:  # pragma: no cover - reader errors (bad encoding) land here
        return None, {}, [Problem(filename, 0, 0, "", f"YAML error: {exc}")]
    finally:
        loader.dispose()
    return _to_value(node, loader, filename)


def _to_value(
    node: yaml.Node | None, loader: Any, filename: str
) -> tuple[Any, Marks, list[Problem]]:
    marks: Marks = {}
    problems: list[Problem] = []
    if node is None:
        return None, marks, problems
    value = _convert(node, (), loader, marks, problems, filename)
    return value, marks, problems


def _free_as_converted(loader: Any, text: str) -> None:
    """A list item's nodes can be dropped once converted (a large schedule's node tree and its
    value then do not take memory at the same time), unless an alias may point into them: no
    `&anchor`, no alias."""
    loader.free_converted = "&" not in text


_STR = "tag:yaml.org,2002:str"


def _convert(
    node: yaml.Node,
    path: Path,
    loader: Any,
    marks: Marks,
    problems: list[Problem],
    filename: str,
) -> Any:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            col = key_node.start_mark.column + 1
            if not isinstance(key, str):
                problems.append(
                    Problem(filename, line, col, format_path(path), "keys must be text")
                )
                continue
            if key in first_seen:
                problems.append(
                    Problem(
                        filename,
                        line,
                        col,
                        format_path((*path, key)),
                        f"duplicate key (first given on line {first_seen[key]})",
                    )
                )
                continue
            first_seen[key] = line
            child = (*path, key)
            result[key] = _convert(value_node, child, loader, marks, problems, filename)
            marks[child] = (line, col)
        return result
    if isinstance(node, yaml.SequenceNode):
        items: list[Any] = node.value
        result_items = []
        for index, item in enumerate(items):
            result_items.append(_convert(item, (*path, index), loader, marks, problems, filename))
            if loader.free_converted:
                items[index] = None  # the value is built: let the item's nodes go now
        return result_items
    if node.tag == _STR and isinstance(node, yaml.ScalarNode):
        return node.value  # what construct_object returns for text, without its bookkeeping
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        line, col = marks[path]
        problems.append(Problem(filename, line, col, format_path(path), f"bad value: {exc}"))
        return None


def format_path(path: Path) -> str:
    """("recordings", 1, "chunk") -> "recordings[1].chunk"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out

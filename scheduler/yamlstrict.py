"""A strict YAML reader for hand-edited schedules.

PyYAML follows YAML 1.1, where `10:30` is the number 630, `0123` is 83, `no` is False and a
duplicate key silently wins. For a recording schedule each of those is a wrong recording, not an
error. This loader keeps only YAML-1.2-core scalars (true/false, null, decimal int, float);
everything else stays a string for the validator to judge. Duplicate keys are errors. Every value
keeps its position so later errors can name the file, line and column.
"""

from __future__ import annotations

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


def load(text: str, filename: str) -> tuple[Any, Marks, list[Problem]]:
    """Parse `text`; return (value, marks, problems). On a syntax error value is None."""
    loader = _StrictLoader(text)
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
    marks: Marks = {}
    problems: list[Problem] = []
    if node is None:
        return None, marks, problems
    value = _convert(node, (), loader, marks, problems, filename)
    return value, marks, problems


def _convert(
    node: yaml.Node,
    path: Path,
    loader: _StrictLoader,
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
            result[key] = _convert(value_node, (*path, key), loader, marks, problems, filename)
            marks[(*path, key)] = (line, col)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*path, index), loader, marks, problems, filename)
            for index, item in enumerate(node.value)
        ]
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

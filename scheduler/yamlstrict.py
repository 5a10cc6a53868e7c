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
from collections.abc import Callable
from typing import Any

import yaml

from scheduler.errors import Problem

Path = tuple[str | int, ...]
Marks = dict[Path, tuple[int, int]]  # key path -> (line, column), both 1-based

#: Nodes that aliases may add beyond the file's own: a schedule repeats a settings block now and
#: then; a "billion laughs" file repeats nodes a billion times. Past this: an error naming the
#: alias, found in milliseconds instead of gigabytes later.
ALIAS_BUDGET = 10_000
#: Nesting a schedule never needs (its deepest key is about six levels down).
MAX_DEPTH = 32


_STR = "tag:yaml.org,2002:str"
_SCALAR = yaml.ScalarNode


class _Refused(Exception):
    """Stop converting: the file is past a bound (the problem is already recorded)."""


class _Resolving:
    """A scalar's tag, worked out once per distinct text: the parser asks for every scalar (a
    10,000-recording file has 116,000) and most are the same few keys and values. Exact
    because these loaders have no path resolvers: a tag depends only on the scalar's text and
    whether it was plain, never on where it is (so the per-node path bookkeeping, which
    PyYAML keeps only for path resolvers, is skipped too). A scalar that is not plain (quoted,
    or tagged `!`) is text, as PyYAML's resolver says without looking at it."""

    _tags: dict[str, str]  # a plain scalar's text -> its tag

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not _SCALAR:
            return super().resolve(kind, value, implicit)  # type: ignore[misc]
        if not implicit[0]:
            return _STR
        try:
            return self._tags[value]
        except AttributeError:
            self._tags = {}
        except KeyError:
            pass
        tag = self._tags[value] = super().resolve(kind, value, implicit)  # type: ignore[misc]
        return tag

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


class _StrictLoader(_Resolving, yaml.SafeLoader):
    """SafeLoader with YAML-1.2-core implicit types only; remembers each alias's name."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_names: dict[int, str] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event: Any = self.peek_event()  # type: ignore[no-untyped-call]
            name = str(event.anchor)
            node = super().compose_node(parent, index)
            self.alias_names.setdefault(id(node), name)
            return node
        return super().compose_node(parent, index)


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

    class _FastStrictLoader(_Resolving, _CSafeLoader):  # type: ignore[misc]
        """libyaml's parser with the same YAML-1.2-core resolvers: composes a large schedule
        about 6x faster than the pure-Python parser, with less memory. It is only trusted
        when it succeeds on printable text; anything else is left to `_StrictLoader`, so
        errors keep their exact wording and position."""

    _FastStrictLoader.yaml_implicit_resolvers = _StrictLoader.yaml_implicit_resolvers
    _FastLoader = _FastStrictLoader


#: Text only the pure-Python loader reads as this reader wants: a BOM after the start, `?` as
#: a complex-key indicator, characters PyYAML's reader rejects (it locates them), and anchors
#: (only the pure-Python composer tells which alias a repeated node came from). Tabs are not
#: here: libyaml rejects a tab in indentation as PyYAML does and, as YAML 1.2 says, accepts one
#: between tokens; routing every tab to the slow loader made a large file take seconds.
_PYTHON_ONLY = re.compile(
    r"\ufeff|(?:^|[ \t\[{,])\?(?=[ \t\r\n])|(?:^|[ \t\[{,])&\S|"
    + yaml.reader.Reader.NON_PRINTABLE.pattern,
    re.MULTILINE,
)
_UNPRINTABLE = re.compile(yaml.reader.Reader.NON_PRINTABLE.pattern)
#: Where an anchor (`&name`) can start: a line's start, after blanks or a flow indicator, or
#: right after a `:` or `?` (PyYAML reads `{"a":&x 1}`). `&` inside a URL's query is not one.
_ANCHOR = re.compile(r"(?:^|[ \t\[{,:?])&\S", re.MULTILINE)


def has_anchor(text: str) -> bool:
    """Whether `text` may define an anchor (and so hold aliases); errs towards True."""
    return "&" in text and _ANCHOR.search(text) is not None


def _python_only(text: str) -> bool:
    """`_PYTHON_ONLY.search(text)`, an order of magnitude faster on a large file: its
    four-way alternation is tried at every character, so the cheap tests go first."""
    if "\ufeff" in text or _UNPRINTABLE.search(text):
        return True
    return ("?" in text or "&" in text) and _PYTHON_ONLY.search(text) is not None


#: Above this size a file's syntax error is reported as libyaml found it, without a second,
#: pure-Python parse (about 1.7 s per MB here) just for PyYAML's wording of the same place.
SLOW_REPARSE_LIMIT = 256 * 1024


def _compose_fast(text: str) -> tuple[yaml.Node | None, Any] | yaml.MarkedYAMLError | None:
    """(node, loader) from libyaml; its error; or None to let the pure-Python loader do it."""
    if _FastLoader is None or _python_only(text):
        return None
    loader = _FastLoader(text)
    _free_as_converted(loader, text)
    try:
        return loader.get_single_node(), loader
    except yaml.MarkedYAMLError as exc:
        return exc
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
    try:
        fast = _compose_fast(text)
    except RecursionError:
        return None, {}, [_too_deep(text, filename)]
    big = len(text) > SLOW_REPARSE_LIMIT
    if isinstance(fast, yaml.MarkedYAMLError):
        if big:
            return None, {}, [_syntax_problem(fast, filename)]
    elif fast is not None:
        value, marks, problems = _to_value(*fast, filename)
        if not problems or big:
            return value, marks, problems
        # small files: the pure-Python loader words the same problems as the docs show
    try:
        loader = _StrictLoader(text)  # its reader already rejects control characters
    except yaml.reader.ReaderError as exc:
        line, col = _line_col(text, exc.position)
        return None, {}, [Problem(filename, line, col, "", _unprintable(exc.character))]
    _free_as_converted(loader, text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return None, {}, [_syntax_problem(exc, filename)]
    except RecursionError:
        return None, {}, [_too_deep(text, filename)]
    except yaml.reader.ReaderError as exc:  # a control character further into a long file
        line, col = _line_col(text, exc.position)
        return None, {}, [Problem(filename, line, col, "", _unprintable(exc.character))]
    finally:
        loader.dispose()
    return _to_value(node, loader, filename)


def _syntax_problem(exc: yaml.MarkedYAMLError, filename: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return Problem(filename, line, col, "", f"YAML syntax error: {exc.problem or exc.context}")


def _unprintable(character: object) -> str:
    code = ord(character) if isinstance(character, str) else character
    return f"control character U+{code:04X} is not allowed in YAML text"


def _line_col(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line_start = text.rfind("\n", 0, position) + 1
    return text.count("\n", 0, position) + 1, position - line_start + 1


def _too_deep(text: str, filename: str) -> Problem:
    """The composer ran out of stack: point at the first bracket nested past MAX_DEPTH."""
    depth = 0
    line, col = 1, 1
    for index, char in enumerate(text):
        depth += char in "[{"
        depth -= char in "]}"
        if depth > MAX_DEPTH:
            line, col = _line_col(text, index)
            break
    return Problem(filename, line, col, "", f"nested deeper than {MAX_DEPTH} levels")


def _to_value(
    node: yaml.Node | None, loader: Any, filename: str
) -> tuple[Any, Marks, list[Problem]]:
    marks: Marks = {}
    problems: list[Problem] = []
    if node is None:
        return None, marks, problems
    walk = _Walk(loader, marks, problems, filename)
    try:
        if loader.free_converted:  # no anchor, so no alias: nothing to budget or trace
            value = walk.plain(node, ())
        else:
            value = walk.convert(node, (), repeated=False)
    except _Refused:
        return None, marks, problems
    return value, marks, problems


def _free_as_converted(loader: Any, text: str) -> None:
    """A list item's nodes can be dropped once converted (a large schedule's node tree and its
    value then do not take memory at the same time), unless an alias may point into them: no
    `&anchor`, no alias."""
    loader.free_converted = "&" not in text


class _Walk:
    """Node tree -> plain values and marks, bounded: alias expansion within ALIAS_BUDGET, no
    alias inside the node it names, at most MAX_DEPTH levels."""

    def __init__(self, loader: Any, marks: Marks, problems: list[Problem], filename: str) -> None:
        self.loader = loader
        self.marks = marks
        self.problems = problems
        self.filename = filename
        self.seen: set[int] = set()  # nodes converted once: the next visit is via an alias
        self.open: set[int] = set()  # containers being converted (an alias to one is a loop)
        self.repeats = 0  # nodes converted again through aliases
        self.via = "an alias"  # the alias whose copy is being converted

    def refuse(self, path: Path, node: yaml.Node, message: str) -> _Refused:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        self.problems.append(Problem(self.filename, line, col, format_path(path), message))
        return _Refused()

    def alias(self, node: yaml.Node) -> str:
        names: dict[int, str] = getattr(self.loader, "alias_names", {})
        return f"*{names[id(node)]}" if id(node) in names else "an alias"

    def convert(self, node: yaml.Node, path: Path, repeated: bool) -> Any:
        key = id(node)
        if key in self.open:
            raise self.refuse(path, node, f"{self.alias(node)} refers to a node that contains it")
        if key in self.seen and not repeated:
            repeated = True  # from here down, everything is a copy an alias made
            self.via = self.alias(node)
        if repeated:
            self.repeats += 1
            if self.repeats > ALIAS_BUDGET:
                message = (
                    f"aliases expand to more than {ALIAS_BUDGET} nodes ({self.via} and the "
                    "aliases inside it): a schedule needs no such repetition"
                )
                raise self.refuse(path, node, message)
        self.seen.add(key)
        if len(path) > MAX_DEPTH:
            raise self.refuse(path, node, f"nested deeper than {MAX_DEPTH} levels")
        self.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self.open.add(key)
            try:
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, path, repeated)
                return self._sequence(node, path, repeated)
            finally:
                self.open.discard(key)
        if node.tag == _STR and isinstance(node, yaml.ScalarNode):
            return node.value  # what construct_object returns for text, without its bookkeeping
        return self._construct(node, path)

    def plain(self, node: yaml.Node, path: Path) -> Any:
        """convert() for a tree without aliases (every node is visited once): the same values,
        marks and problems, without the alias bookkeeping (a third of the walk's time)."""
        if len(path) > MAX_DEPTH:
            raise self.refuse(path, node, f"nested deeper than {MAX_DEPTH} levels")
        mark = node.start_mark
        self.marks[path] = (mark.line + 1, mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR:
                return node.value
            return self._construct(node, path)
        if isinstance(node, yaml.SequenceNode):
            items: list[Any] = node.value
            result_items = []
            for index, item in enumerate(items):
                result_items.append(self.plain(item, (*path, index)))
                items[index] = None  # the value is built: let the item's nodes go now
            return result_items
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, False, self.plain)
        return self._construct(node, path)

    def _construct(self, node: yaml.Node, path: Path) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            line, col = self.marks[path]
            message = f"bad value: {exc}"
            self.problems.append(Problem(self.filename, line, col, format_path(path), message))
            return None

    def _mapping(
        self,
        node: yaml.MappingNode,
        path: Path,
        repeated: bool,
        plain: Callable[[yaml.Node, Path], Any] | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        shallow = len(path) < MAX_DEPTH  # a value here is not nested too deep
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            col = key_node.start_mark.column + 1
            if not isinstance(key, str):
                self.problems.append(
                    Problem(self.filename, line, col, format_path(path), "keys must be text")
                )
                continue
            if key in first_seen:
                self.problems.append(
                    Problem(
                        self.filename,
                        line,
                        col,
                        format_path((*path, key)),
                        f"duplicate key (first given on line {first_seen[key]})",
                    )
                )
                continue
            first_seen[key] = line
            child = (*path, key)
            if plain is None:
                result[key] = self.convert(value_node, child, repeated)
            elif shallow and value_node.tag == _STR and type(value_node) is _SCALAR:
                result[key] = value_node.value  # plain()'s answer, half the values of a file
            else:
                result[key] = plain(value_node, child)
            self.marks[child] = (line, col)  # a value's place is its key's
        return result

    def _sequence(self, node: yaml.SequenceNode, path: Path, repeated: bool) -> list[Any]:
        items: list[Any] = node.value
        result_items = []
        for index, item in enumerate(items):
            result_items.append(self.convert(item, (*path, index), repeated))
            if self.loader.free_converted:
                items[index] = None  # the value is built: let the item's nodes go now
        return result_items


def format_path(path: Path) -> str:
    """("recordings", 1, "chunk") -> "recordings[1].chunk"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out

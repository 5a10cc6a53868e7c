"""The YAML reader's shortcuts give exactly what the plain way gives.

`yamlstrict` reads a large schedule faster in two ways: a scalar's tag is looked up once per
distinct text, and the test that routes a file to the pure-Python parser checks the cheap
characters first. Both are held here to the plain computation they replace.
"""

from __future__ import annotations

import yaml
from hypothesis import given
from hypothesis import strategies as st

from scheduler import yamlstrict

#: Characters that matter to the routing test, mixed with ordinary text.
_ROUTING = st.text(
    alphabet=st.sampled_from(list("ab ?&\t\n\r[{,:-#\ufeff\x01\x85\ud7ff\ue000")),
    max_size=40,
)


@given(_ROUTING)
def test_routing_to_the_pure_python_parser_is_the_regular_expression(text: str) -> None:
    assert yamlstrict._python_only(text) is (yamlstrict._PYTHON_ONLY.search(text) is not None)


_SCALARS = st.one_of(
    st.sampled_from(
        ["true", "False", "NULL", "~", "", "0", "-12", "+7", "0123", "1.5", ".5", "1e3"]
    ),
    st.sampled_from(["1.0e+3", "10:30", "no", "on", "0x1F", "1_000", ".inf", "2026-12-01"]),
    st.text(alphabet="0123456789.-+eEtfnulTFNUL", min_size=1, max_size=6),
)


@given(st.lists(_SCALARS, min_size=1, max_size=8), st.booleans())
def test_a_remembered_tag_is_the_tag_the_resolver_gives(
    values: list[str], quoted_first: bool
) -> None:
    """The same texts, plain and quoted, repeated: each value is what the resolver without
    the memo reads (YAML 1.2 core types; 10:30, 0123, no stay text; "true" stays text)."""
    quoted, plain = [f'"{v}"' for v in values], list(values)
    items = quoted + plain if quoted_first else plain + quoted
    document = "x:\n" + "".join(f"  - {item}\n" for item in items * 2)
    value, _, problems = yamlstrict.load(document, "t.yaml")
    if problems:
        return  # not a valid document both ways (e.g. a plain ":"): nothing to compare

    class _Plain(yaml.SafeLoader):
        pass

    _Plain.yaml_implicit_resolvers = yamlstrict._StrictLoader.yaml_implicit_resolvers
    assert value == yaml.load(document, Loader=_Plain)


def test_the_loaders_have_no_path_resolvers() -> None:
    """The memo is exact only while no tag depends on where a node is."""
    assert not yamlstrict._StrictLoader.yaml_path_resolvers
    if yamlstrict._FastLoader is not None:
        assert not yamlstrict._FastLoader.yaml_path_resolvers


_LEAVES = st.one_of(st.integers(-5, 5), st.booleans(), st.none(), st.text("ab:1 ", max_size=4))
_TREES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text("abc", min_size=1, max_size=3), inner, max_size=3),
    ),
    max_leaves=12,
)


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:
        return True


def _walk(text: str, *, plain: bool) -> tuple[object, object, object]:
    fast = yamlstrict._compose_fast(text)
    assert isinstance(fast, tuple)
    node, loader = fast
    loader.free_converted = plain
    return yamlstrict._to_value(node, loader, "t.yaml")


@given(_TREES, st.integers(0, 40))
def test_the_walk_without_aliases_gives_what_the_alias_aware_walk_gives(
    tree: object, depth: int
) -> None:
    """Values, key positions and problems (a duplicate key, nesting past MAX_DEPTH) alike."""
    text = yaml.dump({"x": tree, "y": [tree] * 2}, Dumper=_NoAliases, default_flow_style=False)
    text += "x: again\n"  # a duplicate key, reported with both lines
    text += "deep: " + "[" * depth + "]" * depth + "\n"
    text += "deeper: " + "{a: " * depth + "text" + "}" * depth + "\n"  # text at the bottom
    assert _walk(text, plain=True) == _walk(text, plain=False)


def test_text_one_level_too_deep_in_a_mapping_is_refused_by_both_walks() -> None:
    depth = yamlstrict.MAX_DEPTH  # the innermost mapping is allowed, the text in it is not
    text = "deeper: " + "{a: " * depth + "text" + "}" * depth + "\n"
    value, _, problems = _walk(text, plain=True)
    assert value is None
    assert [p.message for p in problems] == [f"nested deeper than {depth} levels"]
    assert _walk(text, plain=False) == _walk(text, plain=True)

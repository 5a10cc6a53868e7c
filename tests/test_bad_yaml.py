"""Malformed schedules at `recsched check`: every one exits 2 with a located message (file:line:
column), never a traceback or a hang: the hand-written traps of issue 14 and a generated corpus
of mutations of config.example.yaml."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from scheduler.cli import main
from scheduler.config import MAX_CONFIG_BYTES

pytestmark = pytest.mark.usefixtures("lvb_env")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
LOCATED = re.compile(r"^  (?P<file>\S+):(?P<line>\d+):(?P<col>\d+): ", re.M)

BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)

TRAPS: dict[str, tuple[bytes, str]] = {
    "alias bomb": (BOMB.encode(), "aliases expand to more than"),
    "self-referencing alias": (b"loop: &loop [*loop]\n", "*loop refers to a node that contains"),
    "5,000 levels": (b"deep: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested deeper than"),
    "NUL byte": (b"providers:\n  lvb:\n    appid: 1234\n    key: a\0b\n", "U+0000"),
    "BEL byte": (b"providers:\n  lvb:\n    appid: 1234\n    key: a\x07b\n", "U+0007"),
    "Latin-1": (b"recordings:\n  - name: caf\xe9\n", "not UTF-8"),
    "empty reference": (b"providers:\n  lvb:\n    appid: 1234\n    key: ${}\n", "names nothing"),
    "date without time": (
        b"providers:\n  lvb: {appid: 1, key: '${LVB_KEY}'}\nrecordings:\n"
        b"  - {name: a, channel_id: c, start: 2026-12-01, duration: 1h}\n",
        "is not a date and time",
    ),
    "tab indentation": (b"providers:\n\tlvb: {}\n", "YAML syntax error"),
}


def _check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "-c", str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", list(TRAPS))
def test_each_trap_exits_2_with_a_located_problem(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, expected = TRAPS[name]
    path = tmp_path / "trap.yaml"
    path.write_bytes(content)
    path.chmod(0o600)
    code, err = _check(path, capsys)
    assert code == 2, err
    assert expected in err
    located = LOCATED.findall(err)
    assert located and all(int(line) >= 1 and int(col) >= 1 for _, line, col in located), err


def test_a_file_past_the_size_limit_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    code, err = _check(path, capsys)
    assert code == 2 and "larger than 2 MiB" in err


def _mutations(seed: int = 14) -> list[tuple[str, str]]:
    """Deterministic, hand-editing-shaped damage to the example: each line removed, doubled,
    indented by a tab or one space, its colon dropped, an alias or anchor or control
    character inserted, the file cut there; plus random byte flips."""
    rng = random.Random(seed)
    lines = EXAMPLE.splitlines(keepends=True)
    out: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        variants = {
            "removed": "",
            "doubled": line + line,
            "tab": "\t" + line,
            "space": " " + line,
            "no colon": line.replace(":", "", 1),
            "alias": line.rstrip("\n") + " *nowhere\n",
            "anchor loop": line.replace(":", ": &x [*x]", 1),
            "control": line[: len(line) // 2] + "\x1b" + line[len(line) // 2 :],
        }
        kind = rng.choice(sorted(variants))
        out.append((f"line {i + 1} {kind}", "".join([*lines[:i], variants[kind], *lines[i + 1 :]])))
        out.append((f"cut at line {i + 1}", "".join(lines[:i]) + line[: len(line) // 2]))
    for n in range(40):
        text = bytearray(EXAMPLE.encode())
        for _ in range(3):
            text[rng.randrange(len(text))] = rng.randrange(256)
        out.append((f"flips {n}", text.decode("utf-8", errors="surrogateescape")))
    return out


def test_a_corpus_of_damaged_examples_never_crashes_and_every_refusal_is_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = 0
    corpus = _mutations()
    for name, text in corpus:
        path = tmp_path / "damaged.yaml"
        path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
        path.chmod(0o600)
        code, err = _check(path, capsys)  # an exception here fails the test: no traceback
        assert code in (0, 2), (name, err)
        if code == 2:
            refused += 1
            assert "Traceback" not in err
            problems = [ln for ln in err.splitlines()[1:] if ln.startswith("  ")]
            assert problems, (name, err)
            for problem in problems:
                match = LOCATED.match(problem + "\n")
                assert match, (name, problem)
                assert int(match["line"]) >= 1, (name, problem)
    assert refused > len(corpus) // 2  # the corpus does damage (most mutations are refused)


def test_a_large_file_s_syntax_error_is_located_without_a_second_slow_parse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Above SLOW_REPARSE_LIMIT libyaml's own location is reported (the pure-Python parser
    takes about 1.7 s per MB here); a tab between tokens is YAML 1.2 and stays on the fast
    path, while a tab in indentation is refused as before."""
    from scheduler import yamlstrict

    padding = "# " + "x" * 78 + "\n"
    lines = yamlstrict.SLOW_REPARSE_LIMIT // len(padding) + 10
    path = tmp_path / "big.yaml"
    path.write_text(padding * lines + "recordings:\n\t- name: a\n")
    path.chmod(0o600)
    code, err = _check(path, capsys)
    assert code == 2 and f"big.yaml:{lines + 2}:1: YAML syntax error" in err
    value, _, problems = yamlstrict.load("a:\tb\n", "t.yaml")
    assert problems == [] and value == {"a": "b"}

"""Secrets referenced from the YAML: `${VAR}`, `${file:PATH}` or `${cred:NAME}`.

A `Secret` never shows its value in `repr`/`str`, so it cannot leak into a log line or a
traceback by accident. Only a provider's signing code calls `reveal()`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_REFERENCE = re.compile(r"\$\{(?:(file|cred):)?([^}]*)\}")


class Secret:
    """A secret value plus where it came from (the reference is safe to print)."""

    __slots__ = ("_value", "path", "source")

    def __init__(self, value: str, source: str, path: Path | None = None) -> None:
        self._value = value
        self.source = source
        self.path = path  # the file it was read from, if any

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def is_reference(text: str) -> bool:
    """True when `text` is exactly one `${…}` reference (not a literal secret)."""
    return _REFERENCE.fullmatch(text.strip()) is not None


def resolve(text: str, env: Mapping[str, str]) -> Secret:
    """Resolve a secret reference; a literal is returned as is. ValueError says what is missing.

    `${VAR}` reads the environment, `${file:PATH}` a file (trailing newline stripped), and
    `${cred:NAME}` a systemd credential in `$CREDENTIALS_DIRECTORY` (LoadCredential=).
    """
    match = _REFERENCE.fullmatch(text.strip())
    if match is None:
        return Secret(text, "literal in YAML")
    kind, name = match.groups()
    if not name.strip():
        raise ValueError(
            f"{text.strip()} names nothing: write ${{VAR}}, ${{file:PATH}} or ${{cred:NAME}}"
        )
    if kind is None:
        if not env.get(name):
            raise ValueError(f"environment variable {name} is not set (or is empty)")
        return Secret(env[name], f"${{{name}}}")
    if kind == "cred":
        directory = env.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise ValueError(
                f"${{cred:{name}}} needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)"
            )
        path = Path(directory) / name
    else:
        path = Path(name).expanduser()
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
    if not value:
        raise ValueError(f"secret file {path} is empty")
    return Secret(value, f"${{{kind}:{name}}}", path)

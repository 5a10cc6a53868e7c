"""The package's layers: no import cycles (lazy imports inside functions included), and the
pure core's contract (.importlinter) holds and is not vacuous."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp", reason="import-linter (and its grimp) not installed")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("scheduler", include_external_packages=True)


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    ours = [m for m in graph.modules if m.startswith("scheduler")]
    cycles = sorted(
        {
            tuple(sorted((module, imported)))
            for module in ours
            for imported in graph.find_modules_directly_imported_by(module)
            if imported.startswith("scheduler")
            and graph.chain_exists(importer=imported, imported=module)
        }
    )
    assert cycles == []


def test_the_pure_core_imports_no_io_framework(graph: grimp.ImportGraph) -> None:
    contract = configparser.ConfigParser()
    contract.read(ROOT / ".importlinter")
    section = contract["importlinter:contract:pure-core"]
    core = section["source_modules"].split()
    forbidden = section["forbidden_modules"].split()
    assert {"scheduler.config", "scheduler.planner", "scheduler.rules"} <= set(core)
    broken = [
        (module, framework)
        for module in core
        for framework in forbidden
        if framework in graph.modules
        and graph.chain_exists(importer=module, imported=framework, as_packages=True)
    ]
    assert broken == []
    # not vacuous: the shell does import them
    assert graph.chain_exists(importer="scheduler.dispatch", imported="aiohttp")


def test_the_fakes_stand_apart_from_the_daemon(graph: grimp.ImportGraph) -> None:
    upstream = graph.find_upstream_modules("scheduler.fakes", as_package=True)
    ours = {
        m for m in upstream if m.startswith("scheduler") and not m.startswith("scheduler.fakes")
    }
    assert ours <= {"scheduler"}
    users = graph.find_downstream_modules("scheduler.fakes", as_package=True)
    assert {m for m in users if not m.startswith("scheduler.fakes")} <= {
        "scheduler.cli",
        "scheduler.demo",
        "scheduler.__main__",
    }


LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed")
def test_lint_imports_keeps_every_contract() -> None:
    done = subprocess.run(
        [str(LINT_IMPORTS)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dispatcher_leaves_wire_formats_to_the_senders(graph: grimp.ImportGraph) -> None:
    """The shared send rules in dispatch.py name no provider's wire format: requests, unknown
    outcomes and crash recovery are each provider's sender's (lvb_sender.py, web_sender.py,
    live_sender.py)."""
    direct = graph.find_modules_directly_imported_by("scheduler.dispatch")
    assert not {m for m in direct if m.startswith("scheduler.providers")}
    assert "scheduler.config_web" not in direct


#: Modules of the shell that know one provider (provider_senders: every provider's sender).
PROVIDER_SHELL = {
    "scheduler.lvb_sender",
    "scheduler.web_sender",
    "scheduler.live_sender",
    "scheduler.web_client",
    "scheduler.provider_senders",
}
#: One provider's config section or wire format.
PROVIDER_CORE = {"scheduler.config_web", "scheduler.config_live", "scheduler.providers"}


def test_the_dispatcher_names_no_provider() -> None:
    """dispatch.py is handed its senders (service.py passes provider_senders): neither it nor
    anything it imports reaches a sender, the web client or a wire module, but for the config
    model (config.py), whose sections describe every provider."""
    graph = grimp.build_graph("scheduler")  # its own: a module is removed below

    def reached(modules: set[str]) -> set[str]:
        return {
            module
            for module in modules
            if graph.chain_exists(importer="scheduler.dispatch", imported=module, as_packages=True)
        }

    assert reached(PROVIDER_SHELL) == set()
    assert graph.chain_exists(importer="scheduler.service", imported="scheduler.provider_senders")
    graph.remove_module("scheduler.config")
    assert reached(PROVIDER_SHELL | PROVIDER_CORE) == set()
    # not vacuous: the rest of what the dispatcher imports is still there
    assert graph.chain_exists(importer="scheduler.dispatch", imported="scheduler.senders")
    assert graph.chain_exists(importer="scheduler.dispatch", imported="scheduler.transport")

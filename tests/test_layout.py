"""Imports flow one way and modules stay small (issue #16): the architecture, checked on every run.

Why a test and not a convention: a forbidden import is one line in a long diff; the rules below
are the README's "Architecture" table, and this test fails the moment one is broken.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {"core", "shards", "supervisor", "bot", "sim", "perf", "common", "detectors", "venues", "store", "trading", "replay"}
# package -> packages of ours it must never import (anywhere in a module, function-level imports included)
FORBIDDEN = {
    "core": PACKAGES - {"core"},
    "common": PACKAGES - {"common"},
    "sim": {"core", "shards", "supervisor", "bot", "detectors", "venues", "store", "trading", "replay", "common"},
    "bot": {"core", "shards", "detectors", "supervisor", "sim", "perf", "replay"},
    "shards": {"supervisor", "bot", "detectors", "store", "trading", "sim", "perf", "replay"},
    "detectors": {"shards", "bot", "supervisor", "store", "trading", "venues", "sim", "perf", "replay"},
    "venues": {"core", "shards", "supervisor", "bot", "detectors", "store", "trading", "sim", "perf", "replay"},
    "store": {"core", "shards", "supervisor", "bot", "detectors", "venues", "trading", "sim", "perf", "replay"},
    "trading": {"core", "shards", "supervisor", "bot", "detectors", "sim", "perf", "replay"},
    "supervisor": {"sim", "perf", "replay"},
    "replay": {"supervisor", "bot", "shards", "store", "trading", "perf"},
}
MAX_LINES = 450
SUPERVISOR_CLASS_MAX_LINES = 200
_TEXT_IMPORT = re.compile(r"^\s*(?:from|cimport|import)\s+([A-Za-z_][\w.]*)", re.M)


def _modules() -> list[Path]:
    found = []
    for top in sorted(PACKAGES):
        for path in (REPO / top).rglob("*"):
            if path.suffix in (".py", ".pyx", ".pxd", ".pyi") and not path.name.endswith(("_pb2.py", "_pb2.pyi")):
                found.append(path)
    return found


def imports_of(path: Path) -> set[str]:
    """Top-level package names a module imports (absolute imports only; .pyx/.pxd read as text)."""
    src = path.read_text(encoding="utf-8")
    if path.suffix not in (".py", ".pyi"):
        return {m.split(".")[0] for m in _TEXT_IMPORT.findall(src)}
    out = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_imports_flow_one_way() -> None:
    broken = []
    for path in _modules():
        top = path.relative_to(REPO).parts[0]
        for name in sorted(imports_of(path) & FORBIDDEN.get(top, set())):
            broken.append(f"{path.relative_to(REPO)}: {top} imports {name}")
    assert broken == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The rule above is only as good as imports_of: a function-level import counts too."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from shards.worker import ShardWorker\n    import bot.cards as c\n")
    assert imports_of(module) == {"shards", "bot"}
    pyx = tmp_path / "m.pyx"
    pyx.write_text("from core.book cimport OrderBook\ncimport numpy\n")
    assert imports_of(pyx) == {"core", "numpy"}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_is_too_long(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)}: {lines} lines; split it by concern"


def test_the_supervisor_only_wires_its_parts() -> None:
    tree = ast.parse((REPO / "supervisor" / "app.py").read_text(encoding="utf-8"))
    (cls,) = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "Supervisor"]
    size = (cls.end_lineno or 0) - cls.lineno + 1
    assert size <= SUPERVISOR_CLASS_MAX_LINES, f"class Supervisor is {size} lines"

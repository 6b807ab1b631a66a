"""The .pyi stubs of the compiled modules (core/*.pyi, shards/*.pyi) match what the modules export.

Why: a type checker trusts a stub over the extension it describes, so a stub that drifts (a
method renamed in the .pyx, a parameter added) would type-check callers against an API that no
longer exists. Each stub's public names must exist on the compiled module with the same kind
(class, function, property/attribute, constant) and, where Cython exposes a signature, the same
parameter names; and every public class, function and constant the compiled module defines,
and every public member of its classes, must be in the stub.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "shards")
STUBS = sorted(p for package in PACKAGES for p in (ROOT / package).glob("*.pyi"))
COMPILED = sorted(p for package in PACKAGES for p in (ROOT / package).glob("*.pyx"))
KEPT_DUNDERS = {"__init__", "__call__"}
CONSTANT_TYPES = (bool, int, float, str, tuple, dict, frozenset)


def _module_name(path: Path) -> str:
    return f"{path.parent.name}.{path.stem}"


def _public(name: str) -> bool:
    return not name.startswith("_") or name in KEPT_DUNDERS


def _params(node: ast.FunctionDef) -> list[str]:
    a = node.args
    names = [x.arg for x in a.posonlyargs + a.args]
    names += [f"*{a.vararg.arg}"] if a.vararg else []
    names += [x.arg for x in a.kwonlyargs]
    names += [f"**{a.kwarg.arg}"] if a.kwarg else []
    return names


def _runtime_params(obj: object) -> list[str] | None:
    try:
        sig = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None  # slot wrappers of cdef classes (__init__) carry no signature
    prefix = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return [prefix.get(p.kind, "") + p.name for p in sig.parameters.values()]


def _stub_names(tree: ast.Module) -> dict[str, ast.AST]:
    """Public top-level names of a stub: classes, functions, annotated constants, `X as X` re-exports."""
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.ImportFrom):
            names.update({a.asname: node for a in node.names if a.asname == a.name})
    return {k: v for k, v in names.items() if not k.startswith("_")}


def _class_members(node: ast.ClassDef) -> dict[str, str]:
    """name -> "method" | "attribute" (properties and annotated attributes) of a stub class."""
    out: dict[str, str] = {}
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            is_prop = any(isinstance(d, ast.Name) and d.id == "property" for d in item.decorator_list)
            out[item.name] = "attribute" if is_prop else "method"
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            out[item.target.id] = "attribute"
    return {k: v for k, v in out.items() if _public(k)}


def _runtime_kind(cls: type, name: str) -> str:
    raw = inspect.getattr_static(cls, name)
    if isinstance(raw, types.GetSetDescriptorType | types.MemberDescriptorType | property):
        return "attribute"
    return "method"


def _runtime_public(mod: types.ModuleType) -> set[str]:
    """Public classes, functions and constants the compiled module itself defines (not imports)."""
    out = set()
    for name, obj in vars(mod).items():
        if name.startswith("_") or isinstance(obj, types.ModuleType):
            continue
        if isinstance(obj, CONSTANT_TYPES) or getattr(obj, "__module__", None) == mod.__name__:
            out.add(name)
    return out


def test_every_compiled_module_with_a_python_api_has_a_stub() -> None:
    missing = []
    for pyx in COMPILED:
        mod = importlib.import_module(_module_name(pyx))
        if _runtime_public(mod) and not pyx.with_suffix(".pyi").exists():
            missing.append(str(pyx.relative_to(ROOT)))
    assert not missing, f"compiled modules without a .pyi stub: {missing}"


@pytest.mark.parametrize("stub", STUBS, ids=lambda p: str(p.relative_to(ROOT)))
def test_stub_matches_its_compiled_module(stub: Path) -> None:
    assert stub.with_suffix(".pyx").exists(), f"{stub.name} describes no compiled module"
    mod = importlib.import_module(_module_name(stub))
    assert not mod.__file__.endswith(".py"), f"{mod.__name__} is not the compiled extension: {mod.__file__}"
    tree = ast.parse(stub.read_text(), str(stub))
    names = _stub_names(tree)
    problems = [f"{name}: in the stub, not on the module" for name in names if not hasattr(mod, name)]
    problems += [f"{name}: on the module, not in the stub" for name in sorted(_runtime_public(mod) - set(names))]
    for name, node in names.items():
        obj = getattr(mod, name, None)
        if obj is None:
            continue
        if isinstance(node, ast.FunctionDef):
            want = _runtime_params(obj)
            if want is not None and want != _params(node):
                problems.append(f"{name}{tuple(_params(node))}: compiled signature is {tuple(want)}")
        if not isinstance(node, ast.ClassDef):
            continue
        if not isinstance(obj, type):
            problems.append(f"{name}: a class in the stub, {type(obj).__name__} on the module")
            continue
        members = _class_members(node)
        runtime = {m for m in vars(obj) if _public(m) and m != "__init__"}
        for member, kind in members.items():
            if not hasattr(obj, member):
                problems.append(f"{name}.{member}: in the stub, not on the class")
                continue
            if member == "__init__":
                continue
            if _runtime_kind(obj, member) != kind:
                problems.append(f"{name}.{member}: a {kind} in the stub, a {_runtime_kind(obj, member)} on the class")
            if kind != "method":
                continue
            item = next(i for i in node.body if isinstance(i, ast.FunctionDef) and i.name == member)
            raw = inspect.getattr_static(obj, member)
            want = _runtime_params(getattr(raw, "__func__", raw))  # a classmethod's function, with cls
            if want is not None and want != _params(item):
                problems.append(f"{name}.{member}{tuple(_params(item))}: compiled signature is {tuple(want)}")
        problems += [f"{name}.{m}: on the class, not in the stub" for m in sorted(runtime - set(members))]
    assert not problems, f"{stub.relative_to(ROOT)} drifted from {mod.__name__}:\n  " + "\n  ".join(problems)

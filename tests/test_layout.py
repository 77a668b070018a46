"""The package's layers: subpackages that import each other one way only."""

from __future__ import annotations

import ast

from tests.support.proc import ROOT

PACKAGE = ROOT / "src" / "tokentrace"


def _room(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _imports() -> dict[str, set[str]]:
    """Each room's rooms imported, deferred imports included (``TYPE_CHECKING`` ones are not)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    edges: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for b in node.body
            for n in ast.walk(b)
        }
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("tokentrace") and _room(target) != _room(module):
                    edges.setdefault(_room(module), set()).add(_room(target))
    return edges


def _reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        room = todo.pop()
        if room == goal:
            return True
        if room not in seen:
            seen.add(room)
            todo.extend(edges.get(room, ()))
    return False


def test_no_two_layers_import_each_other() -> None:
    """No room of the package reaches itself through its imports: the layers form no cycle."""
    edges = _imports()
    cycles = sorted(a for a, targets in edges.items() for b in targets if _reaches(edges, b, a))
    assert cycles == []


def test_the_package_top_holds_only_what_users_import() -> None:
    """Only the public modules (and the version) lie loose at the top; the rest are layers."""
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == [
        "__init__.py",
        "__main__.py",
        "_version.py",
        "exceptions.py",
        "instrumentor.py",
        "pricing.py",
        "testing.py",
        "types.py",
    ]
    layers = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert layers == [
        "_accounting",
        "_cli",
        "_core",
        "_foundation",
        "_pricing",
        "_telemetry",
        "_tokens",
        "integrations",
        "ledger",
    ]

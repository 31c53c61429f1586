"""The core must not import the edges: api -> workers -> clipper, never back."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EDGE = {"fastapi", "starlette", "rq", "redis", "api", "workers", "rq_dashboard", "uvicorn"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_edges() -> None:
    offenders = {}
    for path in (ROOT / "clipper").rglob("*.py"):
        if "cli" in path.relative_to(ROOT / "clipper").parts:
            continue  # the command line is the composition root
        bad = _imports(path) & EDGE
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_workers_never_import_api() -> None:
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "workers").rglob("*.py") if "api" in _imports(p)
    ]
    assert offenders == []

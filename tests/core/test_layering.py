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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path) -> set[str]:
    """Dotted names of the modules `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else (
        _module_name(path)
    )
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _clipper_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in (ROOT / "clipper").rglob("*.py")}


def _closure(start: str, modules: dict[str, Path]) -> set[str]:
    """Every clipper module `start` names in its imports, directly or through the modules it
    names. Parent packages run implicitly are not followed: the rule is about what a module
    depends on, and `clipper.engine`'s own init is the facade, which imports everything."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in modules:
            continue
        seen.add(name)
        todo.extend(_imported_modules(modules[name]))
    return seen - {start}


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_engine_never_imports_storage_or_the_command_line() -> None:
    offenders = {}
    for path in (ROOT / "clipper" / "engine").rglob("*.py"):
        bad = {
            m for m in _imported_modules(path)
            if _under(m, "clipper.storage") or _under(m, "clipper.cli")
        }  # fmt: skip
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_planning_never_reaches_the_process_runner() -> None:
    """Planning is pure: no module under clipper/engine/plan/ imports the FFmpeg runner,
    directly or through another module of the engine."""
    modules = _clipper_modules()
    runner = "clipper.engine.ffmpeg.runner"
    plan_modules = [m for m in modules if _under(m, "clipper.engine.plan")]
    assert plan_modules, "no planning modules found"
    offenders = {}
    for name in plan_modules:
        reached = _closure(name, modules)
        if runner in reached:
            offenders[name] = runner
    assert offenders == {}


def test_the_layering_check_sees_an_indirect_import() -> None:
    """The closure follows imports through other modules (so the rule above can fail)."""
    modules = _clipper_modules()
    reached = _closure("clipper.engine.verify", modules)
    assert "clipper.engine.ffmpeg.runner" in reached
    assert "clipper.engine.ffmpeg.inputs" in _closure("clipper.engine.ffmpeg.argv", modules)


def test_every_package_says_what_it_owns() -> None:
    """Each package's __init__.py opens with a one-line docstring."""
    missing = []
    for init in [*(ROOT / "clipper").rglob("__init__.py"), *(ROOT / "workers").rglob("__init__.py"),
                 *(ROOT / "api").rglob("__init__.py")]:  # fmt: skip
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        lines = doc.splitlines()
        # A summary line of its own: the first line, followed by nothing or a blank line.
        if not lines or not lines[0].strip() or (len(lines) > 1 and lines[1].strip()):
            missing.append(str(init.relative_to(ROOT)))
    assert missing == []


#: A folder you can take in at a glance (STYLE.md: small, single-concept modules).
MAX_MODULES_PER_FOLDER = 10


def test_no_folder_holds_more_than_about_ten_modules() -> None:
    crowded = {}
    for top in ("clipper", "workers", "api"):
        for folder in [ROOT / top, *[p for p in (ROOT / top).rglob("*") if p.is_dir()]]:
            modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
            if len(modules) > MAX_MODULES_PER_FOLDER:
                crowded[str(folder.relative_to(ROOT))] = len(modules)
    assert crowded == {}


def test_no_noqa_for_the_layout_rules() -> None:
    """C901 (complexity) and PLR0913 (arguments) are fixed by design, never silenced."""
    silenced = [
        f"{p.relative_to(ROOT)}:{n}"
        for top in ("clipper", "workers", "api")
        for p in (ROOT / top).rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), start=1)
        if "noqa" in line and ("C901" in line or "PLR0913" in line)
    ]
    assert silenced == []


#: What runs only in the worker process (see workers/__init__.py): never imported by `api`.
WORKER_ONLY = ("workers.worker", "workers.jobs")


def _worker_only(path: Path) -> list[str]:
    return sorted(m for m in _imported_modules(path) for w in WORKER_ONLY if _under(m, w))


def test_api_never_imports_worker_only_modules() -> None:
    offenders = {
        str(p.relative_to(ROOT)): _worker_only(p)
        for p in (ROOT / "api").rglob("*.py")
        if _worker_only(p)
    }
    assert offenders == {}


def test_shared_workers_modules_never_import_worker_only_ones() -> None:
    shared = [
        p
        for p in (ROOT / "workers").rglob("*.py")
        if "worker" not in p.relative_to(ROOT / "workers").parts[:-1]
        and p != ROOT / "workers" / "jobs.py"  # the entry point's stable dotted path
    ]
    assert len(shared) > 10
    offenders = {str(p.relative_to(ROOT)): _worker_only(p) for p in shared if _worker_only(p)}
    assert offenders == {}

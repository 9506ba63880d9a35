"""The package's layers, and a check that every import runs down them.

A module may import a module of its own component, or one of a lower rank; nothing else. Each
leaf is a component of its own, so the leaves import nothing of ours. Every import counts:
at module level, inside a function, under ``if TYPE_CHECKING:`` — a deferred import or a type
that points up is the same knot, only hidden. Importing a module also runs the ``__init__``
of each package above it, so those imports count as the module's too (which is why
``jobs/__init__.py`` imports nothing: ``limits`` reaches ``jobs.redis_schema`` through it).
ARCHITECTURE.md ("Modules") draws the same table.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "feature_planner"
SOURCE = Path(__file__).parent.parent / "src" / PACKAGE

# rank, layer, components (a module, or a package and everything in it, except what a
# longer entry names). ``feature_planner`` is the package's own __init__ (__version__) only.
LAYERS: list[tuple[int, str, tuple[str, ...]]] = [
    (
        0,
        "leaves",
        ("feature_planner", "models", "errors", "sse", "config", "tables", "jobs.redis_schema"),
    ),
    (
        1,
        "on leaves only",
        (
            "secret_key",
            "events",
            "export",
            "logs",
            "metrics",
            "redis_client",
            "serving",
            "startup_checks",
            "client",
            "database",
            "migrations",
        ),
    ),
    (2, "domain", ("agent", "auth", "limits", "telemetry", "terminal", "history", "github")),
    (3, "services", ("agent_store", "jobs", "issue_links")),
    (4, "web", ("web",)),
    (5, "command line", ("cli",)),
    (6, "python -m", ("__main__",)),
]


def component_of(module: str) -> str | None:
    """The table's entry for ``module`` (the longest that contains it), or None."""
    name = module.removeprefix(PACKAGE + ".")
    if module == PACKAGE:
        return PACKAGE
    entries = [entry for _, _, entries in LAYERS for entry in entries if entry != PACKAGE]
    matches = [entry for entry in entries if name == entry or name.startswith(entry + ".")]
    return f"{PACKAGE}.{max(matches, key=len)}" if matches else None


def rank_of(component: str) -> int:
    name = component.removeprefix(PACKAGE + ".")
    return next(rank for rank, _, entries in LAYERS if name in entries)


def modules_of(root: Path) -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its __init__)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports_of(module: str, source: str, *, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ours that ``source`` imports, wherever the statement is."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:  # `from . import events` imports a module
                submodule = f"{origin}.{alias.name}"
                found.add(submodule if submodule in known else origin)
    return {name for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


def import_graph(root: Path) -> dict[str, set[str]]:
    """What importing each module runs: its own imports and its packages' __init__'s."""
    modules = modules_of(root)
    known = set(modules)
    own = {
        name: imports_of(name, path.read_text(), is_package=path.name == "__init__.py", known=known)
        for name, path in modules.items()
    }
    graph = {}
    for name in modules:
        parts = name.split(".")
        packages = {".".join(parts[:n]) for n in range(1, len(parts))}
        graph[name] = own[name].union(*(own.get(package, set()) for package in packages))
    return graph


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    """Every import that runs up the layers, or across them, or from an unplaced module."""
    problems = []
    for module, imported in sorted(graph.items()):
        source = component_of(module)
        if source is None:
            problems.append(f"{module} is in no layer: place it in LAYERS")
            continue
        for target in sorted(imported):
            destination = component_of(target)
            if destination is None:
                problems.append(f"{module} imports {target}, which is in no layer")
            elif destination != source and rank_of(destination) >= rank_of(source):
                problems.append(
                    f"{module} (rank {rank_of(source)}) imports {target} "
                    f"(rank {rank_of(destination)})"
                )
    return problems


def test_every_import_runs_down_the_layers() -> None:
    assert wrong_way(import_graph(SOURCE)) == []


def test_every_entry_of_the_table_is_a_module_or_package_of_ours() -> None:
    modules = set(modules_of(SOURCE))
    for _, _, entries in LAYERS:
        for entry in entries:
            name = entry if entry == PACKAGE else f"{PACKAGE}.{entry}"
            assert name in modules or any(m.startswith(name + ".") for m in modules), entry


def test_the_client_imports_only_leaves() -> None:
    graph = import_graph(SOURCE)
    assert {rank_of(component_of(target) or "") for target in graph[f"{PACKAGE}.client"]} == {0}


@pytest.mark.parametrize(
    ("module", "source", "wrong"),
    [
        ("models", "from .jobs.service import JobService", "jobs.service"),
        ("sse", "def f():\n    from . import events\n", "events"),
        (
            "telemetry",
            "import typing\nif typing.TYPE_CHECKING:\n    from .jobs.runner import JobRun\n",
            "jobs.runner",
        ),
        ("config", "import feature_planner.events", "events"),
        # a leaf inside a package is a leaf: only the second import is wrong
        ("client", "from .jobs import redis_schema\nfrom .secret_key import *", "secret_key"),
        ("agent.base", "from ..auth import Identity", "auth"),
        ("jobs.redis_schema", "from . import store", "jobs.store"),
        # jobs/__init__ runs whenever redis_schema is imported: it would not be a leaf
        ("jobs", "from . import service", "jobs.service"),
    ],
)
def test_a_wrong_import_is_caught(tmp_path: Path, module: str, source: str, wrong: str) -> None:
    """The check on a copy of the package with one import added."""
    root = tmp_path / PACKAGE
    for path in SOURCE.rglob("*.py"):
        copy = root / path.relative_to(SOURCE)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text())
    parts = module.split(".")
    package = root.joinpath(*parts)
    target = package / "__init__.py" if package.is_dir() else package.with_suffix(".py")
    target.write_text(target.read_text() + "\n" + source + "\n")
    problems = wrong_way(import_graph(root))
    assert problems, source
    assert all(f"imports {PACKAGE}.{wrong} " in problem for problem in problems), problems

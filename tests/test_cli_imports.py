"""The command line is a tree, not a knot: its modules import one another without a cycle, reach
the library only through public names, and a command module leans only on `capsim.cli.common`."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "src"
CLI = SOURCE / "capsim" / "cli"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def cli_sources() -> dict[str, str]:
    return {module_name(path): path.read_text() for path in sorted(CLI.glob("*.py"))}


def imports_of(source: str) -> list[tuple[str, str | None]]:
    """Every (module, name) the source imports, at any depth (lazy imports count too);
    name is None for `import module`."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.extend((node.module, alias.name) for alias in node.names)
    return found


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Which of the given modules each one imports (`from package import module` included)."""
    graph: dict[str, set[str]] = {name: set() for name in sources}
    for name, source in sources.items():
        for module, imported in imports_of(source):
            for target in (module, f"{module}.{imported}"):
                if target in sources and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as the list of its modules (first repeated at the end), or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state:
                cycle = visit(target, [*path, target])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def package_of(module: str) -> str:
    """The first-level package inside capsim: `capsim.cli.app` -> `capsim.cli`."""
    return ".".join(module.split(".")[:2])


def private_imports(sources: dict[str, str]) -> list[str]:
    """`module imports _name from other` wherever other is a capsim module of another package."""
    found = []
    for name, source in sources.items():
        for module, imported in imports_of(source):
            if not module.startswith("capsim") or package_of(module) == package_of(name):
                continue
            private_name = imported is not None and imported.startswith("_")
            private_module = any(part.startswith("_") for part in module.split(".")[1:])
            if (private_name and imported != "__version__") or private_module:
                found.append(f"{name} imports {imported or module} from {module}")
    return found


def test_the_cli_modules_import_one_another_without_a_cycle():
    graph = import_graph(cli_sources())
    assert "capsim.cli.common" in graph and len(graph) >= 7
    assert find_cycle(graph) is None


def test_a_synthetic_cycle_is_seen():
    sources = {
        "capsim.cli.app": "from capsim.cli import capacity\n",
        "capsim.cli.capacity": "def f():\n    from capsim.cli.forecast import plan\n",
        "capsim.cli.forecast": "from capsim.cli.app import app\n",
        "capsim.cli.common": "import typer\n",
    }
    cycle = find_cycle(import_graph(sources))
    assert cycle == [
        "capsim.cli.app",
        "capsim.cli.capacity",
        "capsim.cli.forecast",
        "capsim.cli.app",
    ]


def test_the_cli_uses_only_public_names_of_the_library():
    assert private_imports(cli_sources()) == []


def test_a_synthetic_private_import_is_seen():
    sources = {
        "capsim.cli.gate": (
            "from capsim.analysis.check import check_slos, _verdict\n"
            "from capsim.cli.common import emit\n"
            "from capsim.engine.events._clock import Clock\n"
        )
    }
    assert private_imports(sources) == [
        "capsim.cli.gate imports _verdict from capsim.analysis.check",
        "capsim.cli.gate imports Clock from capsim.engine.events._clock",
    ]


def test_a_command_module_leans_only_on_common():
    graph = import_graph(cli_sources())
    for name, targets in graph.items():
        if name in ("capsim.cli.app", "capsim.cli.common", "capsim.cli", "capsim.cli.entry"):
            continue
        assert targets <= {"capsim.cli.common"}, f"{name} imports {sorted(targets)}"
    # common leans only on the leaf that remembers an interrupt was reported
    assert graph["capsim.cli.common"] <= {"capsim.cli.interrupts"}
    assert graph["capsim.cli.interrupts"] == set()


def test_the_entry_point_loads_nothing_heavy_before_it_can_catch_ctrl_c():
    """The console script's module imports only the standard library and the interrupt flag at
    its top; the command line itself (typer, numpy, ...) is imported inside main()."""
    tree = ast.parse((CLI / "entry.py").read_text())
    top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = {n.module if isinstance(n, ast.ImportFrom) else n.names[0].name for n in top}
    assert names <= {"__future__", "signal", "sys", "capsim.cli.interrupts"}

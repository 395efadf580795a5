"""The layering stays true: no import circle in powersync_plugin (imports inside functions count
too: one there only hides a circle), no module over 400 lines, and the pure core imports no
adapter. Read from the source (the AST), so the check does not depend on what was imported."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "powersync_plugin"
MAX_LINES = 400
# Over the limit, to be split by whoever works on it next (issue 12); listed so the check holds
# for every other module meanwhile, and checked below so the entry goes once the split is done.


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Every powersync_plugin module `name` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else name.rsplit(".", node.level)[0] + "." + node.module
            # `from package import module` names a module; `from module import name` does not
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in MODULES and target != name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles, each as the path that closes it (depth-first search)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_modules_import_no_circle():
    assert cycles(GRAPH) == []


def test_the_cycle_check_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_a_function_level_import_counts():
    assert "powersync_plugin.hook_handlers" in GRAPH["powersync_plugin.entry"]


def test_no_module_is_over_400_lines():
    long = {name for name, path in MODULES.items() if len(path.read_text().splitlines()) > MAX_LINES}
    assert long == set()


def test_the_core_imports_no_adapter_and_nothing_outside_the_core():
    outside = {
        name: sorted(target for target in targets if not target.startswith("powersync_plugin.core"))
        for name, targets in GRAPH.items() if name.startswith("powersync_plugin.core")
    }
    assert {name: targets for name, targets in outside.items() if targets} == {}

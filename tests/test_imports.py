"""The import graph of jcsh: no cycles, and imports point down (shell -> stdlib -> runtime)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("shell", "stdlib", "runtime")


def _modules() -> dict[str, Path]:
    found = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found["jcsh." + ".".join(parts)] = path
    return found


def _graph() -> dict[str, set[str]]:
    """Module -> the jcsh modules it imports anywhere: top level, in functions, under TYPE_CHECKING."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for alias in node.names:  # `from pkg import module` imports the module
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_function_level_imports() -> None:
    graph = _graph()
    assert len(graph) > 60
    # entry.py imports cli inside main(), and sink.py imports sink_smtp inside start().
    assert "jcsh.shell.cli" in graph["jcsh.shell.entry"]
    assert "jcsh.runtime.sink_smtp" in graph["jcsh.runtime.sink"]
    assert "jcsh.shell.commands.script" in graph["jcsh.shell.cli"]  # `from jcsh.shell.commands import script`


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_pairs_that_were_cycles_import_one_way() -> None:
    graph = _graph()
    for low, high in (
        ("jcsh.shell.entry", "jcsh.shell.cli"),
        ("jcsh.shell.repl", "jcsh.shell.commands.script"),
        ("jcsh.shell.repl", "jcsh.shell.prompt"),
        ("jcsh.runtime.sink", "jcsh.runtime.sink_smtp"),
    ):
        assert not (low in graph[high] and high in graph[low]), f"{low} and {high} import each other"
    assert "jcsh.shell.repl" not in graph["jcsh.shell.prompt"]  # the prompt text is a leaf module
    assert graph["jcsh.shell.prompt_text"] == set()


def test_tls_knows_nothing_of_mail() -> None:
    graph = _graph()
    for name, targets in graph.items():
        if name.startswith("jcsh.runtime.tls."):
            assert not {t for t in targets if t.startswith("jcsh.runtime.mail")}, name
    assert "jcsh.runtime.tls.trust" in graph["jcsh.runtime.mail.trust"]  # mail builds the policy, tls applies it


def test_imports_point_down() -> None:
    rank = {"shell": 0, "stdlib": 1, "runtime": 2}
    upward = [
        (name, target)
        for name, targets in _graph().items()
        for target in targets
        if rank[target.split(".")[1]] < rank[name.split(".")[1]]
    ]
    assert upward == []

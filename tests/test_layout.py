"""The package layout: no import cycles (lazy imports included), strategies see only benchmarks.core."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("benchmarks", "strategies", "reports")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, at module level or inside functions."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in known:  # `from pkg import module`
                    out.add(sub)
                elif node.module in known:
                    out.add(node.module)
    return out


def graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(path, known) - {name} for name, path in known.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``g`` as a list of modules, or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(g):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_strategies_import_only_the_core_of_benchmarks():
    bad = {name: sorted(m for m in deps if m.startswith("benchmarks") and not m.startswith("benchmarks.core"))
           for name, deps in graph().items() if name.startswith("strategies")}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"strategies may import benchmarks.core only: {bad}"


def test_reports_import_no_torch_side_of_benchmarks():
    allowed = ("benchmarks.results.metrics", "benchmarks.results.store", "benchmarks.results", "benchmarks")
    bad = {name: sorted(m for m in deps if m.startswith("benchmarks") and m not in allowed)
           for name, deps in graph().items() if name.startswith("reports")}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"reports read results and metrics only: {bad}"


def test_core_imports_nothing_else_of_the_project():
    g = graph()
    bad = {name: sorted(m for m in deps if not m.startswith("benchmarks.core"))
           for name, deps in g.items() if name.startswith("benchmarks.core")}
    assert not any(bad.values()), bad

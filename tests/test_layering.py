"""The layering stays one-way: no import cycle between nasfilter's modules (imports
inside functions included, type-checking-only imports excepted), and the store never
imports the metrics."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "nasfilter"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in list(ast.walk(tree)):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
        pkg = m if p.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg
                    for _ in range(node.level - 1):
                        up = up.rpartition(".")[0]
                    base = up + ("." + node.module if node.module else "")
                names = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            for n in names:
                if n.startswith("nasfilter"):
                    graph[m].add(resolve(n))
        graph[m].discard(m)
    return graph


def _unit(m: str) -> str:
    """The layer a module belongs to: a top-level module, or a subpackage."""
    return ".".join(m.split(".")[:2])


def _cycles(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs of layers that reach each other through the edges."""

    def reaches(a: str, b: str) -> bool:
        seen, todo = set(), [a]
        while todo:
            x = todo.pop()
            if x == b:
                return True
            for y in edges.get(x, ()):
                if y not in seen:
                    seen.add(y)
                    todo.append(y)
        return False

    return sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if reaches(b, a)})  # type: ignore[misc]


def test_no_import_cycle_between_layers() -> None:
    edges: dict[str, set[str]] = {}
    for m, deps in _graph().items():
        for d in deps:
            if _unit(m) != _unit(d) and "nasfilter" not in (_unit(m), _unit(d)):
                edges.setdefault(_unit(m), set()).add(_unit(d))
    assert "nasfilter.spaces" in edges["nasfilter.engine"]  # the graph is really read
    assert _cycles(edges) == [], f"import cycles between layers: {_cycles(edges)}"


def test_the_store_does_not_import_the_metrics_or_the_engine() -> None:
    g = _graph()
    for m, deps in g.items():
        if _unit(m) == "nasfilter.store":
            bad = {d for d in deps if _unit(d) in ("nasfilter.metrics", "nasfilter.engine")}
            assert not bad, (m, bad)


def test_the_detector_finds_a_cycle_through_a_third_layer() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ("a", "b"), ("a", "c"), ("b", "c"),
    ]  # fmt: skip
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []

"""The layout's rules, checked on the source: no import cycle between modules (each cycle is a
contract without its own home), ``edge`` never imports ``export``, and the contracts that
server and device share are imported from ``edge.contract``, never defined again."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("edge", "export")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of ``known`` that ``name`` imports, at top level or lazily inside functions."""

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_pkg else name.split(".")[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            m = resolve(t)
            # A package and its own submodules may import each other (re-exports).
            if m and m != name and not m.startswith(name + ".") and not name.startswith(m + "."):
                out.add(m)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, mods) for m, p in mods.items()}


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_edge_never_imports_export():
    bad = {m: sorted(d for d in deps if d.startswith("export")) for m, deps in _graph().items() if m.startswith("edge")}
    assert {m: d for m, d in bad.items() if d} == {}


# Definitions that belong to edge.contract (or edge.context / edge.atomic) alone.
_ONE_HOME = {
    r"^EVENT_KINDS\s*[:=]": "edge/contract/events.py",
    r"^POSITIVE_KINDS\s*[:=]": "edge/contract/events.py",
    r"^NEGATIVE_KINDS\s*[:=]": "edge/contract/events.py",
    r"^def history_window\(": "edge/contract/inputs.py",
    r"^def interest_feed\(": "edge/contract/inputs.py",
    r"^def quantize_rows\(": "edge/contract/int8.py",
    r"^def dequantize_rows\(": "edge/contract/int8.py",
    r"^def unit_rows\(": "edge/contract/vectors.py",
    r"^def hour_weekday\(": "edge/context.py",
    r"^def atomic_write\(": "edge/atomic.py",
    r"^SQLITE_SYNCHRONOUS\s*[:=]|^SYNCHRONOUS_MODES\s*[:=]": "edge/contract/defaults.py",
}


def test_shared_contracts_are_defined_once():
    homes: dict[str, list[str]] = {}
    for path in _modules().values():
        rel = path.relative_to(ROOT).as_posix()
        for line in path.read_text(encoding="utf-8").splitlines():
            for pattern in _ONE_HOME:
                if re.match(pattern, line):
                    homes.setdefault(pattern, []).append(rel)
    assert {p: sorted(set(files)) for p, files in homes.items()} == {p: [home] for p, home in _ONE_HOME.items()}

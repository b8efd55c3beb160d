"""The package's layers, read from the code (every ``import``, at module level or inside a function).

``inpaint_utils`` is built in layers that only look down (README, "Layout"; docs/architecture.md):
a room (a top-level module, or a subpackage as a whole) may import rooms of its own layer or below,
never above, the rooms form no circle, no room takes a private (``_name``) name of another, and the
modules inside a subpackage form no circle either. A new module must be given its layer here.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "inpaint_utils"

#: layer -> rooms, from the bottom up (the README's layout section draws the same).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("config", "validation", "fileio", "report", "data", "pretrained"),   # foundations
    ("baselines", "viz"),                                                 # image operations, classical fills
    ("masks",),
    ("metrics", "losses"),
    ("models",),
    ("checkpoint", "distributed", "train"),                               # training
    ("inference", "comparison", "diffusion", "gallery"),
    ("cli", "checks", "exercises", "widgets", "nbrun", "colab", "__init__"),  # command line, notebooks' helpers
)
LAYER = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def _modules() -> dict[str, Path]:
    """``"models.glcic"`` / ``"data"`` (a package face) -> file."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1] or ("__init__",)
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _room(module: str) -> str:
    return module.split(".")[0]


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py" and module != "__init__"


def _resolve(module: str, level: int, target: str | None) -> str:
    """The absolute module (relative to the package) of a ``from ... import``."""
    if level == 0:
        assert target is not None
        return target.removeprefix("inpaint_utils").lstrip(".") or "__init__"
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    if module == "__init__":
        base = []
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else [])) or "__init__"


def _edges() -> list[tuple[str, str, str, int]]:
    """``(importer, imported module, name, line)`` for every import of the package's own modules."""
    edges = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 0 and not (node.module or "").startswith("inpaint_utils"):
                    continue
                target = _resolve(module, node.level, node.module)
                for alias in node.names:
                    sub = f"{target}.{alias.name}" if target != "__init__" else alias.name
                    hit = sub if sub in MODULES else target
                    while hit not in MODULES and "." in hit:
                        hit = hit.rsplit(".", 1)[0]
                    edges.append((module, hit, alias.name if hit != sub else "", node.lineno))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("inpaint_utils"):
                        edges.append((module, _resolve(module, 0, alias.name), "", node.lineno))
    return [e for e in edges if e[1] in MODULES and e[1] != e[0]]


EDGES = _edges()


def _cycles(nodes: set[str], edges: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    succ = {n: sorted(b for a, b in edges if a == n) for n in nodes}

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for n in sorted(nodes):
        if n not in index:
            visit(n)
    return found


def test_every_room_has_a_layer():
    rooms = {_room(m) for m in MODULES}
    assert rooms - set(LAYER) == set(), "give each new module or subpackage its layer in LAYERS"
    assert set(LAYER) - rooms == set(), "LAYERS names a room that no longer exists"


def test_imports_only_look_down():
    up = [f"{a} (layer {LAYER[_room(a)]}) imports {b} (layer {LAYER[_room(b)]}), line {line}"
          for a, b, _, line in EDGES if LAYER[_room(b)] > LAYER[_room(a)]]
    assert up == []


def test_no_circle_between_rooms():
    edges = {(_room(a), _room(b)) for a, b, _, _ in EDGES if _room(a) != _room(b)}
    assert _cycles({_room(m) for m in MODULES}, edges) == []


@pytest.mark.parametrize("package", sorted(m for m in MODULES if _is_package(m)))
def test_no_circle_inside_a_subpackage(package):
    """Members import their siblings, never their own package face (which imports them)."""
    inside = {m for m in MODULES if m == package or m.startswith(package + ".")}
    through_face = [f"{a} imports its package face {b}, line {line}" for a, b, _, line in EDGES
                    if a in inside and b == package and a != package]
    assert through_face == []
    edges = {(a, b) for a, b, _, _ in EDGES if a in inside and b in inside}
    assert _cycles(inside, edges) == []


def test_no_private_name_taken_from_another_room():
    taken = [f"{a} takes {name} from {b}, line {line}" for a, b, name, line in EDGES
             if name.startswith("_") and not name.startswith("__") and _room(a) != _room(b)]
    assert taken == []


def test_the_checker_sees_what_it_should():
    """The reader itself: a known downward import, a function-level one, and a face import."""
    pairs = {(a, b) for a, b, _, _ in EDGES}
    assert ("masks.ops", "baselines.fills") in pairs                 # module level
    assert ("baselines", "baselines.exemplar") in pairs              # a face importing its member
    assert any(a == "cli.shared" and _room(b) == "inference" for a, b in pairs)   # inside a function
    assert _cycles({"a", "b", "c"}, {("a", "b"), ("b", "c"), ("c", "a")}) == [["a", "b", "c"]]


def test_the_readme_draws_the_layers_of_the_code():
    """README's layout section lists every room on the line of its layer (8 at the top, 1 at the bottom), and
    docs/architecture.md's table names each room in its layer's row: the picture a contributor reads is true."""
    root = PACKAGE.parent
    readme = root.joinpath("README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    lines = {int(m.group(1)): m.group(2) for m in re.finditer(r"^  ([1-9])  (.*)$", layout, re.M)}
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| ([1-9])\. [^|]*\| ([^|]*)\|", root.joinpath(
        "docs", "architecture.md").read_text(), re.M)}
    assert sorted(lines) == sorted(rows) == list(range(1, len(LAYERS) + 1))
    for i, rooms in enumerate(LAYERS, start=1):
        for room in rooms:
            if room == "__init__":
                continue
            word = re.compile(rf"(?<![\w.]){re.escape(room)}\b")
            assert word.search(lines[i]), f"README's layout line {i} does not name {room}"
            assert word.search(rows[i]), f"docs/architecture.md's layer {i} does not name {room}"

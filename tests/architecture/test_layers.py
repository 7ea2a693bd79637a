"""The packages form layers: each imports only packages below it, and no module imports itself in a loop.

Walks every import statement with `ast`, including imports inside functions (they are dependencies too)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Lowest first. Packages on one level are siblings and must not import each other.
LAYERS = [["core"], ["experiment"], ["archs"], ["train"], ["search", "ensemble"], ["report", "export"], ["cli"], ["dlx"]]
LEVEL = {package: level for level, packages in enumerate(LAYERS) for package in packages}


def modules() -> dict[str, Path]:
    """Every module of the `dlx` import package by its dotted name: `cli/main.py` is `dlx.cli.main`, `dlx/__main__.py`
    is `dlx.__main__` (pyproject.toml's package-dir)."""
    found = {}
    for package in LEVEL:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join(parts if package == "dlx" else ("dlx", *parts))] = path
    return found


def stage(module: str) -> str:
    """The layer a module belongs to: `dlx.train.run` → `train`; the top package's own modules → `dlx`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LEVEL else "dlx"


def imported_names(path: Path, module: str) -> set[str]:
    """Every dlx module that `module` imports (absolute or relative), resolved to the longest known name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    # bare `dlx` is the namespace every import passes through (its __init__ imports nothing), not a dependency
    return {name for name in names if name.split(".")[0] == "dlx" and name != "dlx"}


def resolve(name: str, known: dict) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {module: {target for name in imported_names(path, module)
                     if (target := resolve(name, known)) and target != module}
            for module, path in known.items()}


def test_every_import_goes_down_a_layer_or_stays_in_its_package(graph):
    wrong = []
    for module, targets in graph.items():
        here = stage(module)
        for target in targets:
            there = stage(target)
            if there != here and LEVEL[there] >= LEVEL[here]:
                way = "across" if LEVEL[there] == LEVEL[here] else "up"
                wrong.append(f"{module} imports {target} ({way})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_module_imports_itself_through_a_loop(graph):
    loops, state = [], {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                loops.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not loops, "\n".join(loops)


def test_no_package_imports_another_packages_private_names():
    private = []
    for module, path in modules().items():
        for name in imported_names(path, module):
            parts = name.split(".")
            if stage(name) != stage(module) and any(part.startswith("_") and part != "__init__" for part in parts):
                private.append(f"{module} imports {name}")
    assert not private, "\n".join(sorted(private))


@pytest.mark.parametrize("package", [name for level in LAYERS[:-2] for name in level])  # not cli, dlx: entry points
def test_every_package_declares_its_public_api(package):
    """`__all__` lists what other packages may import, and every listed name resolves (lazy ones too)."""
    import importlib
    module = importlib.import_module(f"dlx.{package}")
    assert getattr(module, "__all__", None), f"{package}/__init__.py declares no __all__"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"dlx.{package}.__all__ names what it does not have: {missing}"

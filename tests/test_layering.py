"""The layering of DESIGN §3: ``irl_vla`` never imports ``sim_bridges`` (nor ``tools``), and no bridge imports
another. Checked on the AST of every module, imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(source: str, module: str) -> set[str]:
    """Every module ``source`` (the text of ``module``, dotted) imports, relative imports resolved."""
    package = module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.add(name)
            out |= {f"{name}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return out


def violations(module: str, imports: set[str]) -> list[str]:
    """The imports of ``module`` that break the layering."""
    top = module.split(".")
    bad = []
    for name in sorted(imports):
        parts = name.split(".")
        if top[0] == "irl_vla" and parts[0] in ("sim_bridges", "tools"):
            bad.append(f"{module} imports {name}")
        elif top[0] == parts[0] == "sim_bridges" and len(parts) > 1 and len(top) > 1 and parts[1] != top[1]:
            bad.append(f"{module} (bridge {top[1]}) imports {name} (bridge {parts[1]})")
    return bad


def _modules(package: str) -> list[tuple[str, Path]]:
    paths = sorted((ROOT / package).rglob("*.py"))
    return [(".".join(path.relative_to(ROOT).with_suffix("").parts), path) for path in paths]


def test_irl_vla_never_imports_a_bridge_and_no_bridge_imports_another() -> None:
    modules = _modules("irl_vla") + _modules("sim_bridges")
    assert len(modules) > 50  # the walk found the packages
    bad = [v for module, path in modules for v in violations(module, imported_modules(path.read_text(), module))]
    assert bad == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("irl_vla.data.x", "def f():\n    from sim_bridges.embedded.render import sensors\n", True),
        ("irl_vla.data.x", "import tools.sources\n", True),
        ("sim_bridges.navsim.x", "from sim_bridges.embedded.render.sensors import SensorRenderer\n", True),
        ("sim_bridges.navsim.x", "from sim_bridges import embedded\n", True),
        ("sim_bridges.navsim.x", "from ..embedded import world\n", True),
        ("sim_bridges.navsim.x", "from . import pickles\nfrom irl_vla.data import scene\n", False),
        ("irl_vla.data.x", "from irl_vla.agents import agent\n", False),
    ],
)
def test_the_check_sees_every_kind_of_import(module: str, source: str, expected: bool) -> None:
    assert bool(violations(module, imported_modules(source, module))) is expected

"""The package's layering, read from the source: what may import what, and where printing and argument parsing live.

- engines, losses, networks and inferers (the training and inference math) import nothing from data, metrics,
  scoring, inference, handlers or the command line;
- metrics (array code) import no data code, no file scoring and no command line;
- only the two command layers print: ``custom/cli.py`` (``python -m custom``) and ``custom/monai_run.py`` (what
  ``python -m monai.bundle run`` needs), which are also the only ones that read a command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "custom"
TRAINING_MATH = ("custom.data", "custom.metrics", "custom.scoring", "custom.inference", "custom.handlers", "custom.cli")
FORBIDDEN = {
    "engines": TRAINING_MATH,
    "losses": TRAINING_MATH,
    "networks": TRAINING_MATH,
    "inferers": TRAINING_MATH,
    "metrics": (
        "custom.data",
        "custom.scoring",
        "custom.inference",
        "custom.handlers",
        "custom.cli",
        "custom.images",
        "custom.outputs",
    ),
}


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved against its package)."""
    package = ["custom", *path.relative_to(PACKAGE).parent.parts]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = package[: len(package) - node.level + 1] if node.level else []
            names.add(".".join([*base, node.module]))
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer):
    for path in sorted((PACKAGE / layer).glob("*.py")):
        bad = sorted(n for n in _imports(path) if n.startswith(FORBIDDEN[layer]))
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_only_the_command_line_prints_or_parses_arguments():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("cli.py", "monai_run.py", "__main__.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        prints = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print"]
        assert not prints, f"{path.relative_to(PACKAGE)} prints (lines {prints})"
        parsers = {"fire", "argparse", "click"} & {name.split(".")[0] for name in _imports(path)}
        assert not parsers, f"{path.relative_to(PACKAGE)} imports {parsers}"


def test_the_test_layering_sees_imports():
    """The checks above would catch a violation: the scanner finds the imports of a module that has them."""
    assert "custom.images" in _imports(PACKAGE / "scoring.py")
    assert "custom.data.datalist" in _imports(PACKAGE / "scoring.py")
    assert "custom.networks.generator" in _imports(PACKAGE / "networks" / "__init__.py")  # relative, resolved

"""No module of the shipped code is over 500 lines (issue 20): libs/, services/, tools/, clients/ and
devtools/ (tests and bench are not held to it)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = ("libs", "services", "tools", "clients", "devtools")
MAX_LINES = 500


def lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def test_no_module_is_over_500_lines():
    modules = [p for tree in TREES for p in sorted((ROOT / tree).rglob("*.py")) if "__pycache__" not in p.parts]
    assert len(modules) > 100  # the trees were found
    over = {str(p.relative_to(ROOT)): n for p in modules if (n := lines(p)) > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them): " + ", ".join(
        f"{path} ({n})" for path, n in sorted(over.items())
    )

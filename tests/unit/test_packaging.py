"""The installed package must hold every module and data file, not only what an editable install sees."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "emoprep").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert {"emoprep.pipelines", "emoprep.schemas"} <= listed


def test_required_top_level_layout() -> None:
    for name in ("emoprep", "pipelines", "schemas", "tests", "cli.py", "pyproject.toml", "README.md"):
        assert (REPO / name).exists(), name


def test_readme_test_command_is_what_ci_runs_and_checks_the_import_layers() -> None:
    """The README's second command is .ci/run's last line, and it runs lint-imports before pytest."""
    import re

    blocks = re.findall(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), flags=re.S)
    ci_last = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip()][-1]
    assert blocks[1].strip() == ci_last.strip()
    assert "lint-imports" in ci_last and ci_last.index("lint-imports") < ci_last.index("pytest")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert any(dep.startswith("import-linter") for dep in extras)

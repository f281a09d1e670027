"""The layers rule (ARCHITECTURE.md): imports between apps only go down, checked by import-linter.

`make test` runs lint-imports on the project; these tests show the contract holds today and
that it does catch an upward import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def run_lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_project_keeps_its_layers():
    result = run_lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """A lower app importing a higher one (contacts → integrations) fails the check."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in config["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "contacts" / "services.py").write_text("from integrations import models  # upward\n")
    (tmp_path / "integrations" / "models.py").write_text("from contacts import services  # downward, fine\n")
    (tmp_path / "campaigns" / "loops.py").write_text("import affiliates  # sideways\n")
    result = run_lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "contacts.services -> integrations.models" in result.stdout
    assert "campaigns.loops -> affiliates" in result.stdout

"""The import layers (issue #20): imports go down the layers written in pyproject.toml
([tool.importlinter]), a package's routes are its own, and no package reaches for another's
private names. `make lint` runs the same contracts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "notifications", "geo")
# gettext's conventional names (app/core/i18n.py), public in spite of the underscore.
GETTEXT = {"_", "_l"}


def test_the_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run(  # noqa: S603 - the linter of our own venv
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "app" and len(parts) > 1 else parts[0]


def _private_names_imported_across_packages() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            importer = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                    continue
                if node.module.split(".")[0] not in PACKAGES:
                    continue
                if _package_of(node.module) == _package_of(importer):
                    continue
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and alias.name not in GETTEXT
                ]
    return found


def test_no_package_imports_another_packages_private_names():
    assert _private_names_imported_across_packages() == []

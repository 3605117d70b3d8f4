"""Dependencies point one way: the layout in README's Layout section, checked on the source.

Each package may import only the packages listed for it (and the standard library and
third-party libraries). Imports are read from the syntax tree, including those inside
functions, so a lazy import cannot hide a wrong direction.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {
    "adapters",
    "deployments",
    "examflow",
    "flows",
    "models",
    "notifications",
    "portal",
    "tasks",
}
# Infrastructure inside examflow/: settings, database wiring, migrations. The CLI (examflow.cli)
# and the portal are shells: nothing but themselves imports them.
# examflow.events and examflow.overview tell Prefect (events, the overview artifact) what the
# database says: infrastructure too, under flows and tasks, above models.
INFRA = {
    "examflow.settings",
    "examflow.db",
    "examflow.migrate",
    "examflow.migrations",
    "examflow.events",
    "examflow.overview",
}
ALLOWED: dict[str, set[str]] = {
    "models": {"models"},
    "adapters": {"adapters", "models"},
    "notifications": {"notifications", "models", *INFRA},
    "tasks": {"tasks", "models", "adapters", "notifications", *INFRA},
    "flows": {"flows", "tasks", "models", *INFRA},
    "deployments": {"deployments", "flows", "models", *INFRA},
}
SHELLS = ("examflow.cli", "portal")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] in OURS]


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _allowed(importer: str, imported: str) -> bool:
    return any(imported == ok or imported.startswith(ok + ".") for ok in ALLOWED[importer])


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_its_layer_may(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in _modules(package)
        for line, name in _imports(path)
        if not _allowed(package, name)
    ]
    assert wrong == []


def test_nothing_outside_a_shell_imports_a_shell() -> None:
    wrong = []
    for package in sorted(OURS):
        for path in _modules(package):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if module.startswith(SHELLS):
                continue
            for line, name in _imports(path):
                if name.startswith(SHELLS):
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert wrong == []


def test_infrastructure_in_examflow_imports_no_domain_shell_or_flow() -> None:
    """Settings, db and migrations sit under everything: they import models at most."""
    wrong = []
    for path in _modules("examflow"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if not module.startswith(tuple(INFRA)):
            continue
        for line, name in _imports(path):
            if name.split(".")[0] in {"flows", "tasks", "notifications", "deployments", "portal"}:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert wrong == []


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    """The rule above can fail: a models module importing adapters is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from adapters.tabular import read_table\n", encoding="utf-8")
    assert _imports(bad) == [(2, "adapters.tabular")]
    assert not _allowed("models", "adapters.tabular")
    assert _allowed("tasks", "adapters.tabular")


def test_importing_the_cli_does_not_import_prefect() -> None:
    """Prefect reads its settings when first imported: the CLI sets PREFECT_HOME and the console
    log level before that (examflow.prefect_env), so no command module may import it early."""
    import subprocess
    import sys

    probe = "import sys, examflow.cli; print('prefect' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False"

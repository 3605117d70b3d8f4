"""What an installed examflow needs beyond its code: the shipped calendar, declared
dependencies, and a plain message when the CJK font is missing. (CI also builds the wheel,
installs it into a fresh venv and runs the commands from an empty directory:
scripts/wheel_smoke.sh.)"""

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.cli import run

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# the top-level packages the wheel ships (packages.find's include patterns, as folders here)
PACKAGES = [
    pattern.rstrip("*")
    for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    if (ROOT / pattern.rstrip("*") / "__init__.py").is_file()
]


def _name(requirement: str) -> str:
    """'psycopg[binary]==3.3.9' -> 'psycopg' (normalised as PEP 503 says)."""
    bare = re.split(r"[\[=<>!~; ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", bare).lower()


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the files importing it, over every shipped package."""
    local = {path.name for path in ROOT.iterdir() if (path / "__init__.py").is_file()}
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for file in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top not in local and top not in sys.stdlib_module_names:
                        found.setdefault(top, set()).add(str(file.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_a_declared_pinned_dependency() -> None:
    declared = PYPROJECT["project"]["dependencies"]
    assert all("==" in requirement for requirement in declared), declared
    declared_names = {_name(requirement) for requirement in declared}
    distributions = packages_distributions()
    undeclared = {
        module: sorted(files)
        for module, files in _third_party_imports().items()
        if not {_name(d) for d in distributions.get(module, [module])} & declared_names
    }
    assert undeclared == {}


def test_the_import_scan_sees_a_dependency_that_arrives_only_through_prefect() -> None:
    # the scan above would be blind if it missed cryptography (imported, not a Prefect API)
    assert "cryptography" in _third_party_imports()


def test_the_shipped_calendar_is_the_repository_calendar() -> None:
    from examflow.shipped import notice_calendar, shipped_calendars

    repo = ROOT / "calendars" / "2024-h1.toml"
    assert notice_calendar().read_bytes() == repo.read_bytes()
    assert [p.name for p in shipped_calendars()] == sorted(
        p.name for p in (ROOT / "calendars").glob("*.toml")
    )


def test_calendar_check_without_a_file_checks_the_shipped_calendar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no calendars/ here
    result = run("calendar", "check")
    assert result.exit_code == 0, result.output
    assert "2024-1" in result.stdout and "2024-05-18" in result.stdout


def test_calendar_check_of_an_explicit_file_still_reads_that_file(tmp_path: Path) -> None:
    broken = tmp_path / "mine.toml"
    broken.write_text('certificate = "x"\n', encoding="utf-8")
    result = run("calendar", "check", str(broken))
    assert result.exit_code == 1
    assert "mine.toml" in result.stderr


def _examflow(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from examflow.cli import main; main()", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", [["demo"], ["up", "--port", "1"]])
def test_a_missing_cjk_font_is_one_message_naming_the_package_and_variable(
    command: list[str], tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "EXAMFLOW_HOME": str(tmp_path / "var"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "EXAMFLOW_CJK_FONT": str(tmp_path / "no-such-font.ttc"),
        "COLUMNS": "300",  # one message, one line
    }
    result = _examflow(*command, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: EXAMFLOW_CJK_FONT="), result.stderr
    assert "apt-get install -y fonts-wqy-microhei" in lines[0]
    assert not (tmp_path / "var").exists()  # said before anything was started or stored


def test_up_s_help_speaks_of_the_portal_and_the_old_port_option_is_still_taken(
    tmp_path: Path,
) -> None:
    helped = run("up", "--help")
    assert helped.exit_code == 0
    assert "school portal" in helped.stdout and "--portal-port" in helped.stdout
    assert "materials download" not in helped.stdout.lower()
    assert "--materials-port" not in helped.stdout  # hidden: scripts still pass it
    env = {
        **os.environ,
        "EXAMFLOW_HOME": str(tmp_path / "var"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "EXAMFLOW_CJK_FONT": str(tmp_path / "no-such-font.ttc"),  # stops before starting
    }
    old_name = _examflow("up", "--materials-port", "18090", env=env, cwd=tmp_path)
    assert old_name.returncode == 1 and "EXAMFLOW_CJK_FONT" in old_name.stderr  # parsed
    both = _examflow(
        "up", "--portal-port", "18091", "--materials-port", "18090", env=env, cwd=tmp_path
    )
    assert both.returncode == 2 and "old name of --portal-port" in both.stderr
    assert not (tmp_path / "var").exists()

"""Tests that need a system tool (CJK font, Chromium) skip locally when it is missing, with the
reason, and fail when EXAMFLOW_REQUIRE_ALL=1 (as .ci/run sets it): CI cannot go green by
skipping what it was meant to check."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NEEDS_FONT = "tests/test_materials_pdf.py::test_font_is_embedded_not_a_cid_standard_font"


def pytest_without_the_font(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EXAMFLOW_REQUIRE_ALL"}
    env |= {"EXAMFLOW_CJK_FONT": str(tmp_path / "no-such-font.ttc"), "COLUMNS": "400", **extra}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", NEEDS_FONT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_missing_font_skips_with_the_reason_locally(tmp_path: Path) -> None:
    result = pytest_without_the_font(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "no CJK font to embed" in result.stdout and "fonts-wqy-microhei" in result.stdout


@pytest.mark.slow
def test_a_missing_font_fails_the_run_when_everything_is_required(tmp_path: Path) -> None:
    result = pytest_without_the_font(tmp_path, EXAMFLOW_REQUIRE_ALL="1")
    assert result.returncode == 1, result.stdout
    assert "skipped" not in result.stdout
    assert "EXAMFLOW_REQUIRE_ALL=1: it must be installed" in result.stdout

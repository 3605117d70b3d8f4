"""A Dask cluster elsewhere (EXAMFLOW_DASK_ADDRESS) renders into the store the portal reads,
whatever directory its workers run in: the flow sends them the store's absolute path, not
the relative one a setting may hold (the default var/materials/store is relative)."""

import os
from pathlib import Path

import pytest

from examflow.settings import get_settings
from tests.cli import run
from tests.helpers import OPEN, new_id, reg_file


@pytest.fixture
def arranged(register_loaded: Path, needs_cjk_font: None) -> Path:
    rows = [["P3", "王小明", new_id(), "初级", ""], ["P1", "李娜", new_id(), "中级", ""]]
    registered = run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert registered.exit_code == 0, registered.output
    assert run("arrange", "2024-1", "--as-of", "2024-05-06T23:00").exit_code == 0
    return register_loaded


@pytest.mark.prefect
@pytest.mark.slow
@pytest.mark.usefixtures("prefect_server")
def test_workers_in_another_directory_render_into_the_store_a_relative_setting_names_here(
    arranged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client, LocalCluster

    from flows.materials_render import _api_url, render_ahead
    from tasks.site_pdfs import materials_store, stale_sites

    here, elsewhere = tmp_path / "portal-machine", tmp_path / "dask-machine"
    here.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("EXAMFLOW_MATERIALS_DIR", "shared/materials")  # relative, as the default
    assert not get_settings().materials_store.is_absolute()
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env={"PREFECT_API_URL": _api_url()},
    ) as cluster:
        monkeypatch.setenv("EXAMFLOW_DASK_ADDRESS", cluster.scheduler_address)
        with Client(cluster) as client:
            # the worker runs in its own directory, as one on another machine does
            client.run(os.chdir, str(elsewhere))
            assert set(client.run(os.getcwd).values()) == {str(elsewhere)}
            summary = render_ahead("2024-1")
    assert (summary.sites, summary.files) == (2, 8)
    stale = stale_sites("2024-1", store=materials_store())  # where the portal looks
    assert [m.site_code for m in stale] == []
    assert len(list((here / "shared" / "materials").rglob("*.pdf"))) == 8
    assert list(elsewhere.rglob("*.pdf")) == []

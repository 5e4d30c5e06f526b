"""An old tutorial (tests/corpus/pangeo-tutorial-2018: python=3.6 and 2018 pins): as
written it ends in one line naming what cannot be had, leaving nothing behind; with
`--relax` it builds on the Pangeo base, says and labels what it dropped, and
`pangeo-binder test` runs its notebook."""

from __future__ import annotations

import shutil

import pytest

from pangeo_binder.builder.lock import BASE_PYTHON, load_base_lock
from tests.helpers.cli import TEST_PREFIX, run_cli
from tests.helpers.corpus import CORPUS
from tests.helpers.engine import assert_no_container_left, containers, images_named

NAME = "pangeo-tutorial-2018"
BASE = load_base_lock()


@pytest.fixture
def repo(tmp_path):
    copy = tmp_path / NAME
    shutil.copytree(CORPUS / NAME, copy)
    return copy


def test_as_written_it_is_one_line_naming_the_pins_that_cannot_be_had(
        repo, tmp_path, docker_engine):
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    before = containers(docker_engine)
    # The corpus test builds this repository too (relaxed), under the same name.
    images_before = images_named(docker_engine, f"{TEST_PREFIX}{NAME}")
    result = run_cli("build", str(repo), env={"TMPDIR": str(scratch)})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("pangeo-binder: error: binder/environment.yml cannot be rebuilt "
                           "as written: python=3.6 is no Python the PyPI path builds "
                           "(3.10 to 3.15), and the conda path failed: "), line
    # The pins of which PyPI has no wheel for those Pythons; xarray 0.10.8 and dask 0.19
    # have pure-Python wheels, so they are not among them.
    assert ("; numpy=1.15, pandas=0.23, matplotlib=2.2, zarr=2.2 have no wheel on PyPI "
            "for Python 3.10 to 3.15; ") in line
    assert line.endswith("`pangeo-binder build --relax` builds it on today's Pangeo base, "
                         "keeping its package names and dropping the pins that cannot be "
                         "met")
    assert list(scratch.iterdir()) == []
    assert images_named(docker_engine, f"{TEST_PREFIX}{NAME}") == images_before
    assert_no_container_left(docker_engine, before)


def test_relaxed_it_builds_on_the_base_labels_what_it_dropped_and_its_notebook_runs(
        repo, docker_engine):
    result = run_cli("build", "--relax", str(repo))
    assert result.returncode == 0, result.stderr[-4000:]
    image = result.stdout.strip()
    [notice] = [ln for ln in result.stderr.splitlines() if "--relax dropped" in ln]
    assert (f"Notice: --relax dropped 7 pins of binder/environment.yml: python=3.6 (now "
            f"{BASE_PYTHON}), numpy=1.15 (now {BASE.pins['numpy']}), xarray=0.10.8 (now "
            f"{BASE.pins['xarray']}), dask=0.19 (now {BASE.pins['dask']}), pandas=0.23 "
            f"(now {BASE.pins['pandas']}) and 2 more; built on the Pangeo base") in notice
    assert not any("standalone environment" in ln for ln in result.stderr.splitlines())

    labels = docker_engine.client.images.get(image).labels
    assert labels["pangeo-binder.relaxed"] == ", ".join([
        f"python=3.6 -> {BASE_PYTHON}", f"numpy=1.15 -> {BASE.pins['numpy']}",
        f"xarray=0.10.8 -> {BASE.pins['xarray']}", f"dask=0.19 -> {BASE.pins['dask']}",
        f"pandas=0.23 -> {BASE.pins['pandas']}",
        f"matplotlib=2.2 -> {BASE.pins['matplotlib']}", f"zarr=2.2 -> {BASE.pins['zarr']}"])
    # The lock records them too, and its packages are the base's.
    lock = docker_engine.run(image, ["cat", "/srv/pangeo-binder/repo.lock"]).output
    assert "# --relax dropped numpy: numpy=1.15 (the Pangeo base pins" in lock
    assert f"numpy=={BASE.pins['numpy']}" in lock

    tested = run_cli("test", image, "--no-network", "--timeout", "300")
    assert tested.returncode == 0, (tested.stdout + tested.stderr)[-3000:]
    [row] = [ln for ln in tested.stdout.splitlines() if "sst-climatology.ipynb" in ln]
    assert row.startswith("PASSED"), tested.stdout
    assert "1 passed" in tested.stderr, tested.stderr[-2000:]

    # Built again, relaxed: the same image, from the cached relaxed lock.
    again = run_cli("build", "--relax", str(repo))
    assert again.returncode == 0 and again.stdout.strip() == image, again.stderr[-2000:]
    assert notice in again.stderr


def test_pins_that_do_not_resolve_on_the_base_go_in_a_second_step(tmp_path, docker_engine):
    """runtime.txt python-3.6 and a requirements.txt whose gsw==3.2.1 (an sdist that no
    longer builds) the base does not pin: the first step drops the Python and the pin
    the base contradicts, the second the pin uv still cannot resolve; cmocean, unpinned,
    stays as written."""
    repo = tmp_path / "ocean-course"
    repo.mkdir()
    (repo / "runtime.txt").write_text("python-3.6\n")
    (repo / "requirements.txt").write_text("xarray==0.10.8\ngsw==3.2.1\ncmocean\n")
    result = run_cli("build", "--relax", str(repo))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--relax drops the other pins of requirements.txt too: cannot resolve " \
           "requirements.txt against the Pangeo base: " in result.stderr
    [notice] = [ln for ln in result.stderr.splitlines() if "Notice: --relax dropped" in ln]
    assert (f"--relax dropped 3 pins of requirements.txt: python-3.6 (now {BASE_PYTHON}), "
            f"xarray==0.10.8 (now {BASE.pins['xarray']}), gsw==3.2.1 (now ") in notice
    labels = docker_engine.client.images.get(result.stdout.strip()).labels
    assert labels["pangeo-binder.relaxed"].startswith(
        f"python-3.6 -> {BASE_PYTHON}, xarray==0.10.8 -> {BASE.pins['xarray']}, gsw==3.2.1 -> ")
    assert "cmocean" not in labels["pangeo-binder.relaxed"]

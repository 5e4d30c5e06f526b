"""The corpus: realistic notebook repositories (tests/corpus/, described in its README.md),
each built through the real CLI and its notebooks executed inside the built image, with
no network, as a reader's "Run All" would."""

from __future__ import annotations

import importlib.util
import shutil
import time
import uuid
from dataclasses import dataclass

import pytest

from tests.helpers.cli import TEST_PREFIX, run_cli
from tests.helpers.corpus import (
    BUILD_OPTIONS,
    CORPUS,
    execute_command,
    marker,
    notebooks,
    repositories,
)

CONDA_VIA_PYPI = importlib.util.find_spec("pangeo_binder.builder.conda_pypi") is not None
NOT_WIRED = ("environment.yml from PyPI (pangeo_binder/builder/conda_pypi.py) is not in "
             "pangeo-binder yet, and the conda path needs conda-forge, which this machine "
             "cannot reach")


@dataclass(frozen=True)
class Expect:
    standalone: bool = False
    notices: tuple[str, ...] = ()  # substrings, each of some `Notice:` line of the build
    check: str = ""  # shell run in the image after the notebooks; must exit 0
    check_output: tuple[str, ...] = ()  # substrings of the check's output
    xfail: str = ""


EXPECT = {
    "xarray-intro": Expect(),
    "dask-tutorial-old-pins": Expect(standalone=True, notices=(
        "binder/requirements.txt moves ", "dask 2025.1.0", "standalone environment")),
    "xarray-pinned-range": Expect(standalone=True, notices=(
        ".binder/requirements.txt moves ", "standalone environment")),
    "python313-tutorial": Expect(standalone=True, notices=(
        "runtime.txt asks for python-3.13", "standalone environment on Python 3.13")),
    "root-package-tutorial": Expect(
        check="cd /tmp && python -c 'import tutorial_utils; print(tutorial_utils.__file__)'",
        check_output=("/srv/venv/lib/",)),
    "editable-course": Expect(
        check="cd /tmp && python -c 'import course_tools; print(course_tools.__file__)'",
        check_output=("/home/jovyan/course_tools/__init__.py",)),
    "many-pins-with-markers": Expect(
        check="python -c 'import importlib.metadata as m; print(sorted({\"pywin32\", "
              "\"backports.zoneinfo\", \"importlib-resources\"} & "
              "{d.metadata[\"Name\"] for d in m.distributions()}))'",
        check_output=("[]",)),
    "obsolete-postbuild": Expect(notices=(
        "jupyter serverextension", "jupyter labextension install",
        "jupyter nbextension")),
    "workspace-start": Expect(
        check="jupyter lab workspaces export",
        check_output=('"notebook:welcome.ipynb"', '"id": "default"')),
    "apt-netcdf": Expect(check="command -v ncdump", check_output=("/usr/bin/ncdump",)),
    "environment-yml-pypi": Expect(
        notices=("binder/environment.yml",),
        xfail="" if CONDA_VIA_PYPI else NOT_WIRED),
    "environment-yml-old-pins": Expect(
        standalone=True, notices=("binder/environment.yml", "standalone environment"),
        xfail="" if CONDA_VIA_PYPI else NOT_WIRED),
    "conda-env-export": Expect(
        standalone=True,
        notices=("binder/environment.yml, a conda env export, is installed from PyPI at its "
                 "exact versions", "C libraries and build-only packages dropped"),
        xfail="" if CONDA_VIA_PYPI else NOT_WIRED),
    # Built with --relax (tests/helpers/corpus.py BUILD_OPTIONS): python=3.6 and every 2018 pin
    # dropped, on the Pangeo base.
    "pangeo-tutorial-2018": Expect(notices=(
        "--relax dropped 7 pins of binder/environment.yml: python=3.6 (now 3.11), "
        "numpy=1.15 (now ", "built on the Pangeo base")),
    "pipenv-course": Expect(
        notices=("binder/Pipfile.lock is used; binder/Pipfile is ignored",
                 "binder/Pipfile.lock is installed as locked: 7 packages"),
        check="python -c 'import tabulate; print(tabulate.__version__)'",
        check_output=("0.10.0",)),
    "pyproject-package": Expect(
        check="cd /tmp && python -c 'import ocean_units; print(ocean_units.__file__)'",
        check_output=("/srv/venv/lib/",)),
    # .dockerignore keeps local.env (an API key) and data/raw/ out of the image
    "uv-project": Expect(
        notices=("uv.lock is installed as locked: 1 package pinned exactly",),
        check="cd /home/jovyan && test -e uv.lock && test ! -e local.env "
              "&& test ! -e data/raw && ! grep -rq corpus-fake-key . && echo ignored-kept-out",
        check_output=("ignored-kept-out",)),
}


def test_every_corpus_repository_has_an_expectation():
    assert sorted(EXPECT) == repositories()
    for name in repositories():
        assert notebooks(CORPUS / name), f"{name} has no notebook"


def params():
    for name in repositories():
        expect = EXPECT.get(name, Expect())
        marks = [pytest.mark.xfail(strict=True, reason=expect.xfail)] if expect.xfail else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(params()))
def test_corpus_repository_builds_and_its_notebooks_run(name, docker_engine, tmp_path):
    expect = EXPECT[name]
    repo = tmp_path / name
    shutil.copytree(CORPUS / name, repo, ignore=shutil.ignore_patterns("__pycache__"))
    if name == "obsolete-postbuild":
        # Its notices are the docker build's own: new content each run, or an identical
        # image from an earlier run is a cache hit and says nothing.
        (repo / "run.txt").write_text(uuid.uuid4().hex)

    started = time.perf_counter()
    result = run_cli("build", *BUILD_OPTIONS.get(name, ()), str(repo))
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-4000:]
    image = result.stdout.strip()
    assert image.startswith(f"{TEST_PREFIX}{name}:")
    print(f"\n{name}: built in {seconds:.1f} s")

    notices = [ln for ln in result.stderr.splitlines() if "Notice:" in ln]
    standalone = any("standalone environment" in ln for ln in notices)
    assert standalone == expect.standalone, notices
    for text in expect.notices:
        assert any(text in ln for ln in notices), (text, notices)
    if name == "obsolete-postbuild":
        # One notice for each removed command the postBuild calls.
        assert len([ln for ln in notices if "jupyter " in ln]) >= 3, notices

    # Every notebook, then the repository's own check, in one container without network
    # (the engine's run is network_disabled), through the image's entrypoint.
    nbs = notebooks(repo)
    command = execute_command(nbs)
    if expect.check:
        command[2] += f"\necho '--- check'\n{expect.check}\n"
    started = time.perf_counter()
    run = docker_engine.run(image, command, timeout=600)
    print(f"{name}: {len(nbs)} notebook(s) executed in {time.perf_counter() - started:.1f} s")
    assert run.exit_code == 0, run.output[-6000:]
    lines = run.output.splitlines()
    for nb in nbs:
        assert marker(name, nb) in lines, run.output[-6000:]
    checked = run.output.partition("--- check")[2]
    for text in expect.check_output:
        assert text in checked, run.output[-3000:]
    if expect.standalone:  # the whole environment is the repository's lock
        locks = docker_engine.run(image, ["ls", "/srv/pangeo-binder"]).output.split()
        assert "environment.lock" in locks and "repo.lock" not in locks, locks

"""Repositories as tutorial authors write them for mybinder.org: pins older than the
Pangeo base, the repository's own package, `-e .` in requirements, a postBuild that
changes what was locked. Real builds on the local Docker engine, through the CLI."""

from __future__ import annotations

import json
import uuid

import pytest

from pangeo_binder.builder.lock import load_base_lock
from pangeo_binder.builder.pythons import PYTHON_LABEL
from tests.helpers.cli import TEST_PREFIX, run_cli
from tests.helpers.engine import (
    assert_no_container_left,
    bridge_address,
    containers,
    images_named,
    sh,
)
from tests.helpers.git_server import PrivateGitServer
from tests.helpers.package_index import PackageIndex, make_wheel
from tests.helpers.repos import git, git_repo, write_tree

BASE = load_base_lock()
# A release of xarray older than the base's, with wheels for the base's Python.
OLD_XARRAY = "2025.1.2"


def build(repo, *args: str, env: dict[str, str] | None = None):
    return run_cli("build", str(repo), *args, env=env)


@pytest.fixture(scope="module")
def old_pins(docker_engine, tmp_path_factory):
    """A tutorial pinned to an older xarray than the base's."""
    repo = write_tree(tmp_path_factory.mktemp("kinds") / "old-pins", {
        "binder/requirements.txt": f"xarray=={OLD_XARRAY}\nnetCDF4\n",
        "README.md": "An older tutorial\n",
    })
    result = build(repo)
    assert result.returncode == 0, result.stderr[-3000:]
    return repo, result.stdout.strip(), result.stderr


def test_pins_off_the_base_build_a_standalone_environment_and_say_so(docker_engine,
                                                                     old_pins):
    _, image, stderr = old_pins
    notices = [ln for ln in stderr.splitlines() if "Notice:" in ln]
    assert len(notices) == 1
    assert f"xarray {OLD_XARRAY} (base {BASE.pins['xarray']})" in notices[0]
    assert "standalone environment" in notices[0]
    out = sh(docker_engine, image,
             "id -u; python -c 'import xarray, netCDF4; print(xarray.__version__)'; "
             "jupyter lab --version; jupyterhub-singleuser --version; "
             "python -c 'import dask_kubernetes, dask_labextension, jupyter_server_proxy'; "
             "grep -c '^xarray==' /srv/pangeo-binder/environment.lock; "
             "ls /srv/pangeo-binder")
    lines = out.splitlines()
    assert lines[0] == "1000" and lines[1] == OLD_XARRAY
    assert "repo.lock" not in out  # the whole environment is the repository's lock


def test_a_standalone_environment_is_its_own_cached_base(docker_engine, old_pins):
    repo, image, _ = old_pins
    parents = images_named(docker_engine, "pangeo-binder/standalone-environment")
    assert parents, "the standalone environment is a named, content-tagged base image"
    again = build(repo)
    assert again.returncode == 0 and again.stdout.strip() == image
    assert "Cache hit" in again.stderr
    assert "Notice:" in again.stderr  # said on every build, not only the first


def test_the_strict_policy_refuses_the_same_repository(docker_engine, old_pins):
    repo, _, _ = old_pins
    result = build(repo, "--strict-base")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("pangeo-binder: error: binder/requirements.txt line 1 asks for ")
    assert f"xarray=={OLD_XARRAY}" in line and f"xarray=={BASE.pins['xarray']}" in line


def test_a_root_package_is_installed_after_its_requirements(docker_engine, tmp_path):
    repo = write_tree(tmp_path / "root-package", {
        "requirements.txt": "xarray-einstats\n",
        "setup.py": "from setuptools import setup\n"
                    "setup(name='tutorial-utils', version='0.3', py_modules=['tutorial_utils'],"
                    " install_requires=['xarray'])\n",
        "tutorial_utils.py": "def answer():\n    return 42\n",
    })
    result = build(repo)
    assert result.returncode == 0, result.stderr[-3000:]
    image = result.stdout.strip()
    assert image.startswith(f"{TEST_PREFIX}root-package:")
    out = sh(docker_engine, image,
             "cd /tmp && python -c 'import tutorial_utils, xarray_einstats; "
             "print(tutorial_utils.answer(), tutorial_utils.__file__)'")
    assert out.startswith("42 /srv/venv/lib/")  # installed, not only importable from ~


def test_an_editable_install_of_the_repository_works(docker_engine, tmp_path):
    repo = write_tree(tmp_path / "editable", {
        "binder/requirements.txt": "-e .\n",
        "pyproject.toml": "[build-system]\nrequires = ['setuptools>=61']\n"
                          "build-backend = 'setuptools.build_meta'\n"
                          "[project]\nname = 'course-helpers'\nversion = '1.0'\n"
                          "dependencies = ['pint']\n"
                          "[tool.setuptools]\npackages = ['course_helpers']\n",
        "course_helpers/__init__.py": "NAME = 'helpers'\n",
    })
    result = build(repo)
    assert result.returncode == 0, result.stderr[-3000:]
    out = sh(docker_engine, result.stdout.strip(),
             "cd /tmp && python -c 'import course_helpers, pint; print(course_helpers.__file__)'"
             " && grep -c '^pint==' /srv/pangeo-binder/repo.lock")
    assert out.splitlines() == ["/home/jovyan/course_helpers/__init__.py", "1"]


def test_a_postbuild_that_moves_a_locked_version_fails_the_smoke_test(docker_engine,
                                                                      tmp_path):
    six = BASE.pins["six"]
    repo = write_tree(tmp_path / "moves-six", {
        "binder/postBuild": "#!/bin/sh\npip install --quiet --no-deps six==1.16.0\n",
    }, executable=("binder/postBuild",))
    result = build(repo)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "pangeo-binder: error: the built image failed its smoke test: the installed "
        f"packages differ from the lock: six is 1.16.0, the lock pins {six}")
    assert images_named(docker_engine, f"{TEST_PREFIX}moves-six") == []


def test_python_3_13_from_runtime_txt_builds_on_debian_trixie(docker_engine, tmp_path):
    repo = write_tree(tmp_path / "py313", {
        "runtime.txt": "python-3.13\n",
        "requirements.txt": "xarray\nnetCDF4\n",
        "analysis.py": "import sys, numpy as np, xarray as xr\n"
                       "ds = xr.Dataset({'t': ('x', np.arange(4.0))})\n"
                       "print(sys.version_info[:2], float(ds.t.mean()))\n",
    })
    result = build(repo)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("Notice: runtime.txt asks for python-3.13: the repository gets a standalone "
            "environment on Python 3.13") in result.stderr
    image = result.stdout.strip()
    out = sh(docker_engine, image, "python analysis.py; jupyter lab --version; "
                                   "grep PRETTY_NAME /etc/os-release")
    assert out.splitlines()[0] == "(3, 13) 1.5"
    assert "trixie" in out


@pytest.mark.parametrize("python", ["3.14", "3.15"])
def test_a_python_debian_sid_packages_builds_from_debian_without_a_download(
        docker_engine, tmp_path, python):
    # python3.14 and python3.15 come from Debian sid's archive. uv's release server, the
    # only other source, cannot be reached from this machine: a build that passes here
    # downloaded no Python.
    major, minor = python.split(".")
    check = (f"import sys\nprint(sys.version)\n"
             f"assert sys.version_info[:2] == ({major}, {minor}), sys.version")
    repo = write_tree(tmp_path / f"py{major}{minor}", {
        "runtime.txt": f"python-{python}\n",
        "version.ipynb": json.dumps({
            "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None,
                       "outputs": [], "source": check}],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}},
            "nbformat": 4, "nbformat_minor": 4}),
    })
    result = build(repo)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (f"Notice: runtime.txt asks for python-{python}: the repository gets a "
            f"standalone environment on Python {python}") in result.stderr
    assert "managed Python" not in result.stderr
    image = result.stdout.strip()
    assert sh(docker_engine, image, "python --version").startswith(f"Python {python}.")
    labels = docker_engine.client.images.get(image).labels
    assert labels[PYTHON_LABEL].startswith(f"python{python} from Debian")
    # Its notebook runs in the image, offline, with the image's kernel.
    tested = run_cli("test", image, "--no-network")
    assert tested.returncode == 0, tested.stdout + tested.stderr[-3000:]
    assert tested.stdout.split()[0] == "PASSED" and "version.ipynb" in tested.stdout


def test_a_python_no_os_image_has_and_uv_cannot_download_is_one_clear_error(docker_engine,
                                                                          tmp_path):
    # Python 3.12 is in no Debian suite, and uv's managed Pythons come from a release
    # server this machine cannot reach.
    repo = write_tree(tmp_path / "py312", {"runtime.txt": "python-3.12\n"})
    before = containers(docker_engine)
    result = build(repo)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("pangeo-binder: error: docker build failed: ")
    assert line.endswith("cannot download Python 3.12 (uv's managed Python) from its "
                         "release server; use a Python a Debian suite packages")
    assert_no_container_left(docker_engine, before)
    assert images_named(docker_engine, f"{TEST_PREFIX}py312") == []


def test_a_git_requirement_is_locked_to_its_commit_and_said_so(docker_engine, tmp_path):
    # A public git server where the sandbox and the build reach it: the Docker bridge.
    server = PrivateGitServer(tmp_path / "served", host=bridge_address(docker_engine))
    try:
        package = git_repo(tmp_path / "tutorial-data", {
            "setup.py": "from setuptools import setup\nsetup(name='tutorial-data', "
                        "version='0.1', py_modules=['tutorial_data'])\n",
            "tutorial_data.py": "SOURCE = 'git'\n",
        })
        git(package, "tag", "v0.1")
        commit = git(package, "rev-parse", "HEAD").strip()
        server.add("tutorial-data", package)
        repo = write_tree(tmp_path / "uses-git", {"binder/requirements.txt": (
            f"tutorial-data @ git+{server.url('tutorial-data')}@v0.1\n"
            "pywin32 ; sys_platform == 'win32'\n"
            "backports.zoneinfo ; python_version < '3.9'\n")})
        result = build(repo)
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        server.shutdown()
    assert (f"Notice: binder/requirements.txt installs tutorial-data at {commit[:12]} from "
            "git: locked to that commit, but hash-checking cannot cover a git checkout"
            ) in result.stderr
    out = sh(docker_engine, result.stdout.strip(),
             "cd /tmp && python -c 'import tutorial_data; print(tutorial_data.SOURCE)' && "
             "cat /srv/pangeo-binder/repo-vcs.txt && "
             "python -c 'import importlib.metadata as m; print(sorted({\"pywin32\", "
             "\"backports.zoneinfo\"} & {d.metadata[\"Name\"] for d in m.distributions()}))'")
    lines = out.splitlines()
    assert lines[0] == "git"
    assert lines[1] == f"tutorial-data @ git+{server.url('tutorial-data')}@{commit}"
    assert lines[2] == "[]"  # markers for other platforms and Pythons: not installed


def test_a_lock_that_resolved_installs_even_where_the_index_looks_older(docker_engine,
                                                                       tmp_path):
    # The resolver sees version 2.0 on the index; every later look at the project's page
    # shows only 1.0, as a cache or mirror behind the newest upload does. The image must
    # get 2.0, the files the resolution chose, without asking the index again.
    project = "pangeo-binder-fixture-newest"
    wheels = dict(make_wheel(project, version, "fixture_newest") for version in ("1.0", "2.0"))
    older, newer = sorted(wheels)
    index = PackageIndex(bridge_address(docker_engine), project, wheels,
                         view=lambda n: [older, newer] if n == 1 else [older])
    try:
        repo = write_tree(tmp_path / "newest-upload", {
            "requirements.txt": f"--extra-index-url {index.url}\n{project}\n",
            "README.md": f"{uuid.uuid4()}\n"})
        result = build(repo)
    finally:
        index.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    assert index.page_requests == 1  # the resolver's, and only it
    out = sh(docker_engine, result.stdout.strip(),
             "cd /tmp && python -c 'import fixture_newest; print(fixture_newest.VERSION)'")
    assert out.strip() == "2.0"


def test_obsolete_jupyter_commands_in_postbuild_are_done_the_new_way_and_said(docker_engine,
                                                                            tmp_path):
    repo = write_tree(tmp_path / "old-postbuild", {"binder/postBuild": (
        "#!/bin/bash\nset -e\n"
        "jupyter serverextension enable --py nbgitpuller --sys-prefix\n"
        "jupyter nbextension enable --py widgetsnbextension --sys-prefix\n"
        "jupyter labextension install @jupyter-widgets/jupyterlab-manager\n"
        "jupyter lab build --minimize=False\n"
        "jupyter labextension list 2>&1 | grep -q jupyterlab-manager\n"
        "touch ~/.postbuild-done\n"),
        # New content every run: the notices are the build's, and an identical image
        # from an earlier run would be a cache hit.
        "run.txt": uuid.uuid4().hex}, executable=("binder/postBuild",))
    result = build(repo)
    assert result.returncode == 0, result.stderr[-3000:]
    notices = [ln.split("Notice: ", 1)[1] for ln in result.stderr.splitlines()
               if "Notice: postBuild:" in ln]
    assert notices == [
        "postBuild: ran `jupyter server extension enable nbgitpuller --sys-prefix` for the "
        "obsolete `jupyter serverextension enable --py nbgitpuller --sys-prefix`",
        "postBuild: skipped the obsolete `jupyter nbextension enable --py widgetsnbextension "
        "--sys-prefix` (JupyterLab 4 takes extensions from Python packages)",
        "postBuild: skipped the obsolete `jupyter labextension install "
        "@jupyter-widgets/jupyterlab-manager` (JupyterLab 4 takes prebuilt extensions from "
        "Python packages: list them in requirements.txt)",
        "postBuild: skipped the obsolete `jupyter lab build --minimize=False` (JupyterLab "
        "4's prebuilt extensions need no build)",
    ]
    out = sh(docker_engine, result.stdout.strip(),
             "ls ~/.postbuild-done && jupyter server extension list 2>&1 | grep nbgitpuller; "
             "command -v jupyter-labextension")
    assert "enabled" in out
    assert out.strip().endswith("/srv/venv/bin/jupyter-labextension")  # sessions: the real one


def test_an_environment_yml_with_pypi_equivalents_builds_on_the_pip_path(docker_engine,
                                                                         tmp_path):
    repo = write_tree(tmp_path / "env-yml", {"binder/environment.yml": (
        "name: tutorial\nchannels:\n  - conda-forge\ndependencies:\n"
        "  - python=3.11\n  - xarray\n  - netcdf4\n  - matplotlib-base\n  - nodejs\n"
        "  - graphviz\n  - python-graphviz\n  - pip\n  - pip:\n    - xarray-einstats\n")})
    result = build(repo)
    assert result.returncode == 0, result.stderr[-3000:]
    notice = next(ln for ln in result.stderr.splitlines() if "is installed from PyPI" in ln)
    assert "matplotlib-base -> matplotlib" in notice
    assert "netcdf4 ->" not in notice  # netCDF4 is the same PyPI name: not a rename
    assert "nodejs" in notice and "graphviz from Debian" in notice
    assert "Solving" not in result.stderr  # no conda solve
    out = sh(docker_engine, result.stdout.strip(),
             "python -c 'import netCDF4, matplotlib, graphviz, xarray_einstats, xarray; "
             "print(xarray.__version__)'; dot -V 2>&1; "
             "grep -c 'netcdf4 -> netCDF4' /srv/pangeo-binder/repo.lock")
    lines = out.splitlines()
    assert lines[0] == BASE.pins["xarray"]  # it fits the base: it shares its layers
    assert lines[1].startswith("dot - graphviz version")
    assert lines[2] == "1"  # the lock records what was mapped


def test_an_environment_yml_with_a_conda_only_package_takes_the_conda_path(tmp_path):
    repo = write_tree(tmp_path / "env-conda", {"binder/environment.yml": (
        "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - xesmf\n")})
    # conda-forge is unreachable here: a channel that does not exist stands for it.
    result = build(repo, env={"PANGEO_BINDER_CONDA_CHANNELS":
                              f"conda-forge=file://{tmp_path}/no-channel"})
    assert "binder/environment.yml cannot be installed from PyPI" in result.stderr
    assert "xesmf" in result.stderr and "solving it with conda" in result.stderr
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot read the channels" in result.stderr.strip().splitlines()[-1]

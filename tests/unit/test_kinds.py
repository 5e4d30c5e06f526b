"""Environment kinds: the ordered list KINDS decides which binder files a repository is
built from, as repo2docker's list of buildpacks does."""

import pytest

from pangeo_binder.builder import kinds
from pangeo_binder.builder.fetch import checkout
from pangeo_binder.builder.kinds import choose, detect, installed
from pangeo_binder.builder.kinds.conda import CondaEnvironment
from pangeo_binder.builder.kinds.conda_via_pypi import CondaViaPyPI
from pangeo_binder.builder.kinds.dockerfile import RepositoryDockerfile
from pangeo_binder.builder.kinds.pip import PipEnvironment
from pangeo_binder.builder.kinds.python_project import PythonProject
from pangeo_binder.builder.kinds.shipped_lock import ShippedLock
from pangeo_binder.events import ignore
from pangeo_binder.spec import parse_source
from tests.helpers.repos import write_tree

BOTH = {"binder/environment.yml": "dependencies: [xarray]\n",
        "binder/requirements.txt": "xarray\n"}


def detect_tree(tmp_path, files):
    root = write_tree(tmp_path / "repo", files)
    with checkout(parse_source(str(root)), ignore) as found:
        config = detect(found, "3.11")
        return config, choose(config, found, ignore)


def test_the_order_is_repo2dockers():
    assert [kind.NAME for kind in kinds.KINDS] == [
        "dockerfile", "unsupported", "conda_via_pypi", "conda", "shipped_lock",
        "python_project", "pip"]


def test_an_environment_yml_is_used_over_requirements_as_repo2docker_does(tmp_path):
    config, kind = detect_tree(tmp_path, BOTH)
    assert config.kind == "conda_via_pypi" and isinstance(kind, CondaViaPyPI)
    assert config.conda_environment == "binder/environment.yml"
    assert config.requirements is None
    assert config.notices[0].startswith("binder/environment.yml is used; "
                                        "binder/requirements.txt is ignored (")


def test_the_list_order_is_what_decides(tmp_path, monkeypatch):
    """With pip ahead of the conda kinds, the same repository is built from its
    requirements.txt, and its environment.yml is the file said to be ignored."""
    reordered = [kind for kind in kinds.KINDS if kind is not kinds.pip]
    reordered.insert(reordered.index(kinds.conda_via_pypi), kinds.pip)
    monkeypatch.setattr(kinds, "KINDS", tuple(reordered))
    config, kind = detect_tree(tmp_path, BOTH)
    assert config.kind == "pip" and isinstance(kind, PipEnvironment)
    assert config.requirements == "binder/requirements.txt"
    assert config.conda_environment is None
    assert config.notices == ("binder/requirements.txt is used; binder/environment.yml is "
                              "ignored (repo2docker's order)",)


@pytest.mark.parametrize(("files", "name", "kind"), [
    ({"Dockerfile": "FROM x\n", "requirements.txt": "x\n"}, "dockerfile",
     RepositoryDockerfile),
    ({"environment.yml": "dependencies: [xarray]\n"}, "conda_via_pypi", CondaViaPyPI),
    ({"environment.yml": "# pangeo-binder: conda\ndependencies: [xarray]\n"}, "conda_via_pypi",
     CondaEnvironment),
    ({"environment.yml": "dependencies: [xarray]\n", "conda-lock.yml": "version: 1\n"},
     "conda", CondaEnvironment),
    ({"pangeo-binder.lock": "x==1\n", "Pipfile": "[packages]\n"}, "shipped_lock", ShippedLock),
    ({"uv.lock": "version = 1\n", "requirements.txt": "x\n"}, "python_project", PythonProject),
    ({"requirements.txt": "x\n"}, "pip", PipEnvironment),
    ({"notebook.ipynb": "{}"}, "pip", PipEnvironment),
])
def test_each_kind_makes_its_kind(tmp_path, files, name, kind):
    config, chosen = detect_tree(tmp_path, files)
    assert config.kind == name and isinstance(chosen, kind)


def test_a_config_no_kind_read_is_refused(tmp_path):
    from pangeo_binder.builder.binder_files import BinderConfig

    with pytest.raises(ValueError, match="no environment kind"):
        choose(BinderConfig(binder_dir=""), None, ignore)


@pytest.mark.parametrize(("locks", "environment"), [
    (["environment.lock"], ("pip", "/srv/venv")),
    (["environment.lock", "repo-vcs.txt", "repo.lock"], ("pip", "/srv/venv")),
    # a conda image carries its installer's lock too
    (["conda-lock.yml", "installer.lock"], ("conda", "/srv/conda")),
    (["repo-vcs.txt"], None), ([], None)])
def test_verify_asks_the_kinds_which_environment_an_image_carries(locks, environment):
    found = installed(locks)
    assert (found and (found.name, found.prefix)) == environment

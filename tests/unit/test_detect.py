"""Binder file detection and validation (repo2docker's contract)."""

import pytest

from pangeo_binder.builder.binder_files import parse_apt_txt
from pangeo_binder.builder.fetch import checkout
from pangeo_binder.builder.kinds import detect
from pangeo_binder.errors import BinderConfigError
from pangeo_binder.events import ignore
from pangeo_binder.spec import parse_source
from tests.helpers.repos import write_tree


def detect_tree(tmp_path, files):
    root = write_tree(tmp_path / "repo", files)
    with checkout(parse_source(str(root)), ignore) as found:
        return detect(found, "3.11")


@pytest.mark.parametrize("binder_dir", ["binder", ".binder", ""])
def test_binder_files_are_found_in_binder_then_dot_binder_then_root(tmp_path, binder_dir):
    prefix = f"{binder_dir}/" if binder_dir else ""
    config = detect_tree(tmp_path, {
        f"{prefix}requirements.txt": "xarray-einstats\n",
        f"{prefix}apt.txt": "nco\n",
        f"{prefix}postBuild": "#!/bin/sh\n",
        f"{prefix}start": "#!/bin/sh\nexec \"$@\"\n",
        f"{prefix}runtime.txt": "python-3.11\n",
        "notebook.ipynb": "{}",
    })
    assert config.binder_dir == binder_dir
    assert config.requirements == f"{prefix}requirements.txt"
    assert config.apt_packages == ("nco",)
    assert config.post_build == f"{prefix}postBuild"
    assert config.start == f"{prefix}start"
    assert config.python_version == "3.11"


def test_binder_dir_hides_root_files(tmp_path):
    config = detect_tree(tmp_path, {"requirements.txt": "x\n", "binder/apt.txt": "nco\n"})
    assert config.requirements is None
    assert config.apt_packages == ("nco",)


def test_both_binder_dirs_is_an_error(tmp_path):
    with pytest.raises(BinderConfigError, match=r"both binder/ and \.binder/"):
        detect_tree(tmp_path, {"binder/apt.txt": "nco\n", ".binder/apt.txt": "nco\n"})


def test_apt_txt_allows_comments_blank_lines_and_debian_names():
    text = "# tools\n\nnco  # netCDF operators\ncdo\nlibgdal-dev\ng++\nlibstdc++6\npython3.11\n"
    assert parse_apt_txt(text) == ("nco", "cdo", "libgdal-dev", "g++", "libstdc++6",
                                   "python3.11")


@pytest.mark.parametrize("line", [
    "nco; rm -rf /", "nco cdo", "$(reboot)", "NCO", "-y", "a", "nco=1.2", "nco\\", "nco:amd64",
])
def test_apt_txt_refuses_anything_but_a_package_name(line):
    with pytest.raises(BinderConfigError, match=r"apt.txt line 2: .* is not a Debian package"):
        parse_apt_txt(f"nco\n{line}\n")


@pytest.mark.parametrize("runtime, version", [("python-3.13", "3.13"),
                                              ("python-3.10.12", "3.10"),
                                              ("python-3.14\n", "3.14"),
                                              ("python-3.15.0", "3.15"),
                                              # Any Python 3: repo2docker's default, so
                                              # the base's.
                                              ("python-3", "3.11"), ("python-3\n", "3.11")])
def test_runtime_names_the_python(tmp_path, runtime, version):
    assert detect_tree(tmp_path, {"runtime.txt": runtime}).python_version == version


@pytest.mark.parametrize("runtime", ["python-3.9", "python-3.16", "python-2.7", "python-2"])
def test_pythons_outside_the_supported_range_are_refused(tmp_path, runtime):
    with pytest.raises(BinderConfigError, match=rf"asks for {runtime}"):
        detect_tree(tmp_path, {"runtime.txt": runtime})


@pytest.mark.parametrize("runtime", ["r-4.1-2022-01-01", "python3.11", "julia-1.9"])
def test_other_runtimes_are_refused(tmp_path, runtime):
    with pytest.raises(BinderConfigError, match="unsupported runtime"):
        detect_tree(tmp_path, {"binder/runtime.txt": runtime})


@pytest.mark.parametrize("name", ["environment.yml", "environment.yaml"])
def test_a_conda_environment_replaces_the_pip_files_and_says_so(tmp_path, name):
    config = detect_tree(tmp_path, {f"binder/{name}": "dependencies: [xarray]\n",
                                    "binder/requirements.txt": "xarray\n",
                                    "binder/apt.txt": "nco\n", "binder/postBuild": "true\n"})
    assert config.conda and config.conda_environment == f"binder/{name}"
    assert config.requirements is None and config.conda_lock is None
    assert config.apt_packages == ("nco",) and config.post_build == "binder/postBuild"
    assert config.notices == (f"binder/{name} is used; binder/requirements.txt is ignored "
                              "(repo2docker's order; the conda environment decides the "
                              "packages and the Python: list pip packages under pip: in "
                              "the environment file)",)


def test_a_shipped_conda_lock_is_a_conda_build_on_its_own(tmp_path):
    config = detect_tree(tmp_path, {"binder/conda-lock.yml": "version: 1\n"})
    assert config.conda and config.conda_lock == "binder/conda-lock.yml"
    assert config.conda_environment is None


@pytest.mark.parametrize("name", ["install.R", "Project.toml"])
def test_other_environment_files_are_refused(tmp_path, name):
    with pytest.raises(BinderConfigError, match=name.replace(".", r"\.")):
        detect_tree(tmp_path, {name: ""})


def test_repo_dockerfile_bypasses_everything_with_a_warning(tmp_path):
    config = detect_tree(tmp_path, {"binder/Dockerfile": "FROM x\n",
                                    "binder/requirements.txt": "xarray\n"})
    assert config.dockerfile == "binder/Dockerfile"
    assert config.requirements is None
    assert "bypasses the pinned Pangeo environment" in config.warnings[0]


@pytest.mark.parametrize("line", ["file:///tmp/x", "--editable ../y", "../z", "/opt/x",
                                  "-e /srv", "evil @ file:///etc", "./../z", "-e ./a/../../z"])
def test_requirements_from_outside_the_repository_are_refused(tmp_path, line):
    with pytest.raises(BinderConfigError,
                       match=r"line 2: .*installs from outside the repository"):
        detect_tree(tmp_path, {"requirements.txt": f"xarray\n{line}\n"})


@pytest.mark.parametrize("line", ["-e .", ".", "./pkg", "--editable ./pkg", ".[dask]",
                                  "-e ./pkg[io]"])
def test_requirements_may_install_the_repositorys_own_packages(tmp_path, line):
    package = "pkg/" if "pkg" in line else ""
    config = detect_tree(tmp_path, {"binder/requirements.txt": f"xarray\n{line}\n",
                                    f"{package}setup.py": "from setuptools import setup\n"})
    assert config.requirements == "binder/requirements.txt"
    assert not config.install_repository  # listed already: installed once


@pytest.mark.parametrize("line", ["-e .", "./pkg"])
def test_a_local_requirement_without_a_package_is_named(tmp_path, line):
    with pytest.raises(BinderConfigError, match=r"line 1: .* names no Python package"):
        detect_tree(tmp_path, {"requirements.txt": f"{line}\n"})


def test_a_root_package_is_installed_as_repo2docker_does(tmp_path):
    config = detect_tree(tmp_path, {"requirements.txt": "xarray\n",
                                    "setup.py": "from setuptools import setup\n"})
    assert config.install_repository
    config = detect_tree(tmp_path / "b", {"pyproject.toml": PYPROJECT})
    assert config.install_repository


PYPROJECT = ("[project]\nname = 'x'\nversion = '1'\n\n[build-system]\n"
             "requires = ['setuptools']\nbuild-backend = 'setuptools.build_meta'\n")


@pytest.mark.parametrize("text", ["[tool.black]\nline-length = 99\n",
                                  "[project]\nname = 'app'\nversion = '1'\n"])
def test_a_pyproject_without_project_and_build_system_is_not_a_package(tmp_path, text):
    # repo2docker's rule: tool settings, or an application's [project] as `uv init`
    # writes it, are not installed
    config = detect_tree(tmp_path, {"pyproject.toml": text})
    assert not config.install_repository


@pytest.mark.parametrize(("requires", "runtime", "python"), [
    (">=3.10", None, None), (">=3.12", None, "3.15"), ("==3.13.*", None, "3.13"),
    (">=3.12", "python-3.13", "3.13")])
def test_a_root_packages_requires_python_chooses_the_python(tmp_path, requires, runtime,
                                                              python):
    tree = {"pyproject.toml": PYPROJECT.replace("version = '1'\n", "version = '1'\n"
                                                f"requires-python = '{requires}'\n")}
    if runtime:
        tree["runtime.txt"] = f"{runtime}\n"
    assert detect_tree(tmp_path, tree).python_version == python


def test_a_runtime_the_root_package_refuses_is_an_error(tmp_path):
    pyproject = PYPROJECT.replace("version = '1'\n", "version = '1'\nrequires-python = '>=3.12'\n")
    with pytest.raises(BinderConfigError, match=r"runtime\.txt asks for python-3\.11 but "
                                                r"pyproject\.toml asks for Python >=3\.12"):
        detect_tree(tmp_path, {"runtime.txt": "python-3.11\n", "pyproject.toml": pyproject})


def test_a_binder_directory_keeps_the_root_package_out_with_a_warning(tmp_path):
    config = detect_tree(tmp_path, {"binder/requirements.txt": "xarray\n",
                                    "setup.py": "from setuptools import setup\n"})
    assert not config.install_repository
    assert any("add `.` to binder/requirements.txt" in w for w in config.warnings)


def test_requirements3_is_ignored_with_a_warning_outside_python_2(tmp_path):
    config = detect_tree(tmp_path, {"binder/requirements3.txt": "xarray\n"})
    assert any("requirements3.txt is ignored" in w for w in config.warnings)


def test_unreadable_binder_file_is_named(tmp_path):
    root = tmp_path / "repo" / "binder"
    root.mkdir(parents=True)
    (root / "apt.txt").write_bytes(b"\xff\xfe nco")
    with (pytest.raises(BinderConfigError, match=r"binder/apt\.txt is not UTF-8"),
          checkout(parse_source(str(root.parent)), ignore) as found):
        detect(found, "3.11")


def test_shipped_lock_is_detected(tmp_path):
    config = detect_tree(tmp_path, {"binder/pangeo-binder.lock": "x==1\n",
                                    "binder/requirements.txt": "x\n"})
    assert config.lock_file == "binder/pangeo-binder.lock"


def test_a_binder_file_linked_inside_the_repository_is_read(tmp_path):
    root = write_tree(tmp_path / "repo", {"apt.txt": "nco\n", "notebook.ipynb": "{}"})
    (root / "binder").mkdir()
    (root / "binder" / "apt.txt").symlink_to("../apt.txt")
    with checkout(parse_source(str(root)), ignore) as found:
        assert detect(found, "3.11").apt_packages == ("nco",)


# repo2docker's order, with pangeo-binder's and uv's locks among the pip files: for each
# pair, the file that is used and the one that is ignored.
PRECEDENCE = [
    ("binder/Dockerfile", "binder/environment.yml"),
    ("binder/Dockerfile", "binder/Pipfile"),
    ("binder/environment.yml", "binder/Pipfile"),
    ("binder/environment.yml", "binder/Pipfile.lock"),
    ("binder/environment.yml", "binder/uv.lock"),
    ("binder/conda-lock.yml", "binder/pylock.toml"),
    ("binder/pangeo-binder.lock", "binder/Pipfile"),
    ("binder/pangeo-binder.lock", "binder/requirements.txt"),
    ("binder/Pipfile", "binder/requirements.txt"),
    ("binder/Pipfile", "binder/pylock.toml"),
    ("binder/Pipfile.lock", "binder/uv.lock"),
    ("binder/pylock.toml", "binder/uv.lock"),
    ("binder/pylock.toml", "binder/requirements.txt"),
    ("binder/uv.lock", "binder/requirements.txt"),
]
CONTENT = {"Dockerfile": "FROM x\n", "environment.yml": "dependencies: [xarray]\n",
           "conda-lock.yml": "version: 1\n", "pangeo-binder.lock": "x==1\n",
           "Pipfile": "[packages]\nxarray = '*'\n", "Pipfile.lock": '{"default": {}}',
           "pylock.toml": 'lock-version = "1.0"\n', "uv.lock": "version = 1\n",
           "requirements.txt": "xarray\n"}


@pytest.mark.parametrize(("used", "ignored"), PRECEDENCE)
def test_each_pair_of_binder_files_follows_repo2dockers_order(tmp_path, used, ignored):
    config = detect_tree(tmp_path, {name: CONTENT[name.rsplit("/", 1)[1]]
                                    for name in (used, ignored)})
    chosen = (config.dockerfile or config.conda_environment or config.conda_lock
              or config.lock_file or config.python_project or config.requirements)
    assert chosen == used
    assert config.notices[0].startswith(f"{used} is used; {ignored} is ignored (")


def test_a_pipfile_lock_is_used_over_its_pipfile_as_pipenv_does(tmp_path):
    config = detect_tree(tmp_path, {"Pipfile": CONTENT["Pipfile"],
                                    "Pipfile.lock": CONTENT["Pipfile.lock"],
                                    "requirements.txt": "xarray\n"})
    assert config.python_project == "Pipfile.lock"
    assert config.notices == (
        "Pipfile.lock is used; Pipfile is ignored (a Pipfile.lock is installed as locked)",
        "Pipfile.lock is used; requirements.txt is ignored (repo2docker's order)")


def test_a_pipfile_keeps_the_root_package_out_as_repo2docker_does(tmp_path):
    config = detect_tree(tmp_path, {"Pipfile": CONTENT["Pipfile"], "setup.py": ""})
    assert not config.install_repository
    assert config.notices == ("Pipfile is used; setup.py is ignored (repo2docker's order)",)


@pytest.mark.parametrize(("name", "text", "python"), [
    ("Pipfile", "[requires]\npython_version = '3.13'\n", "3.13"),
    ("Pipfile.lock", '{"_meta": {"requires": {"python_version": "3.11"}}}', None),
    ("pylock.toml", "lock-version = '1.0'\nrequires-python = '>=3.12'\n", "3.15"),
    ("uv.lock", "version = 1\nrequires-python = '==3.13.*'\n", "3.13")])
def test_a_project_file_names_its_python(tmp_path, name, text, python):
    config = detect_tree(tmp_path, {f"binder/{name}": text})
    assert config.python_version == python
    assert config.python_from == (f"binder/{name}" if python else None)


@pytest.mark.parametrize(("name", "text", "error"), [
    ("Pipfile", "[packages\n", r"binder/Pipfile is not valid TOML"),
    ("Pipfile.lock", "{\n  'default': 1", r"binder/Pipfile\.lock is not valid JSON: line 2"),
    ("Pipfile.lock", "[]", r"binder/Pipfile\.lock is not a Pipfile\.lock"),
    ("uv.lock", "version = \n", r"binder/uv\.lock is not valid TOML")])
def test_a_malformed_project_file_is_one_line_naming_it(tmp_path, name, text, error):
    with pytest.raises(BinderConfigError, match=error):
        detect_tree(tmp_path, {f"binder/{name}": text})


def test_ignore_files_of_the_binder_directory_and_the_root_are_read(tmp_path):
    config = detect_tree(tmp_path, {
        "binder/requirements.txt": "xarray\n", "binder/.dockerignore": "# data\ndata/\n\n",
        ".containerignore": ".env\n", ".dockerignore": "!keep.env\n"})
    assert config.ignore_patterns == ("data/", "!keep.env", ".env")

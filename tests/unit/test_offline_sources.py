"""Sources on a machine that reaches no name server (a build cluster behind a firewall, a
DNS outage), as BinderHub's build pods and the CLI meet them:

- a git URL, a gh:/gl:/gist: shorthand and a directory are recognised without one network
  request, and no record provider is asked about them;
- the build-pod command line fetches a `file://` or loopback git source offline;
- a record provider's host list is pangeo-binder's copy, never a download;
- a source that cannot be had is one `failed` event (one line in the plain CLI) naming it
  and the cause, with no traceback.

No Docker here: a build-pod run is pointed at an engine socket that does not exist, so it
stops at the engine check, after its source is fetched, detected and locked
(tests/integration/test_builder_offline.py builds the same sources for real)."""

from __future__ import annotations

import datetime
import json
import runpy
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pangeo_binder.builder import records
from pangeo_binder.builder.fetch import checkout
from pangeo_binder.errors import SourceError
from pangeo_binder.events import ignore
from pangeo_binder.spec import (
    GitSource,
    LocalSource,
    RecordSource,
    looks_like_source,
    parse_source,
)
from tests.helpers.cli import REPO_ROOT, names_asked, offline_env, run_builder, run_cli
from tests.helpers.records_standin import RecordsStandIn
from tests.helpers.repos import git_repo, served_notebooks

UPDATE_SCRIPT = REPO_ROOT / "scripts" / "update-dataverse-hosts"
HARVARD = "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/DVN/TJCLKP"


@pytest.fixture
def no_dns(monkeypatch) -> list[str]:
    """This process without name resolution (loopback aside), as `offline_env` makes a
    child process; the names asked for are collected."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def refuse(host, *args, **kwargs):
        if host in (None, "localhost", "127.0.0.1", "::1"):
            return real(host, *args, **kwargs)
        asked.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.delenv("PANGEO_BINDER_CONTENT_HOSTS", raising=False)
    monkeypatch.delenv("PANGEO_BINDER_DOI_RESOLVER", raising=False)
    return asked


@pytest.fixture
def no_record_providers(monkeypatch) -> None:
    def asked(*args: object) -> None:
        raise AssertionError("a record provider was asked")

    monkeypatch.setattr(records, "_providers", asked)


def no_engine_offline(tmp_path: Path) -> dict[str, str]:
    """A child process's settings: no name resolution, no Docker engine, and the record
    settings' defaults."""
    return {**offline_env(tmp_path / "names-asked"),
            "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
            "PANGEO_BINDER_CONTENT_HOSTS": "", "PANGEO_BINDER_DOI_RESOLVER": ""}


def events(result: subprocess.CompletedProcess[str]) -> list[dict]:
    """The builder's output: with --json-logs every line, on stdout, is a JSON event."""
    assert result.stderr == ""
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("text", [
    "file:///srv/git/notebooks.git", "https://git.example.org/group/notebooks.git",
    "https://github.com/org/notebooks", "https://gitlab.com/group/dataset/project",
    "http://127.0.0.1:8080/notebooks.git", "ssh://git@git.example.org/notebooks.git",
    "git@github.com:org/notebooks.git", "gh:org/notebooks@v1", "gl:group/sub/project",
    "gist:ada/0123abcd", "examples/quickstart",
])
def test_git_sources_and_directories_are_recognised_without_the_network(
        text, no_dns, no_record_providers, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    assert isinstance(parse_source(text), GitSource | LocalSource)
    assert looks_like_source(text)
    assert no_dns == []


def test_git_sources_and_directories_are_fetched_without_the_network(
        no_dns, no_record_providers, tmp_path):
    repo = git_repo(tmp_path / "repo", {"intro.ipynb": "{}"})
    for text in (repo.as_uri(), str(repo)):
        with checkout(parse_source(text), ignore) as files:
            assert files.files == ("intro.ipynb",)
    assert no_dns == []


@pytest.fixture(scope="module")
def git_sources(tmp_path_factory):
    """A notebook repository as a `file://` URL and served by git's HTTP backend on
    loopback, and its commit."""
    with served_notebooks(tmp_path_factory.mktemp("sources"), "offline\n") as made:
        yield made


@pytest.mark.parametrize("kind", ["file", "http"])
def test_the_build_pod_command_line_fetches_a_git_source_offline(git_sources, kind,
                                                                 tmp_path):
    urls, commit = git_sources
    result = run_builder(f"--ref={commit}", "--image=offline/notebooks:1", urls[kind],
                         env=no_engine_offline(tmp_path))
    lines = events(result)
    assert {"phase": "fetching", "message": f"Fetched commit {commit}\n"} in lines
    # Fetched, detected and locked; then the first thing that needs an engine stops it.
    assert [e for e in lines if e["phase"] == "failed"] == lines[-1:]
    assert lines[-1]["message"].startswith("Docker is not running or not reachable")
    assert result.returncode == 1
    assert names_asked(tmp_path / "names-asked") == []


def test_an_unreachable_doi_resolver_is_one_failed_event(tmp_path):
    result = run_builder("--ref=1", "--image=offline/record:1", "10.5281/zenodo.1",
                         env=no_engine_offline(tmp_path))
    assert (result.returncode, events(result)) == (1, [
        {"phase": "fetching", "message": "Fetching record 10.5281/zenodo.1\n"},
        {"phase": "failed", "message": "cannot look up DOI 10.5281/zenodo.1: cannot resolve "
                                       "host doi.org\n"}])
    assert names_asked(tmp_path / "names-asked") == ["doi.org"]

    plain = run_cli("build", "10.5281/zenodo.1", env=no_engine_offline(tmp_path))
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert [line for line in plain.stderr.splitlines() if "error" in line] == [
        "pangeo-binder: error: cannot look up DOI 10.5281/zenodo.1: cannot resolve host "
        "doi.org"]


def test_a_dataverse_record_is_recognised_from_the_shipped_list(no_dns):
    [(_, dataverse)] = records._providers("dataverse", [])
    assert dataverse.detect(HARVARD) == HARVARD
    assert dataverse.detect("https://example.org/dataset.xhtml?persistentId=doi:10.1/x") \
        is None
    assert no_dns == []


def test_a_url_of_no_known_service_is_asked_of_every_provider_offline(no_dns, tmp_path):
    # As a DOI of an unknown prefix resolves: each provider looks at the URL it names.
    source = RecordSource(None, "https://example.org/papers/1", "10.1234/elsewhere")
    with pytest.raises(SourceError, match=r"^10.1234/elsewhere is no record of zenodo/"):
        records.fetch_record(source, tmp_path / "record", ignore)
    assert no_dns == []


def test_a_services_failure_is_one_line_naming_the_record_and_the_cause(no_dns, tmp_path,
                                                                        monkeypatch):
    standin = RecordsStandIn()
    try:
        with socket.socket() as sock:  # a port nothing listens on
            sock.bind(("127.0.0.1", 0))
            dead = f"127.0.0.1:{sock.getsockname()[1]}"
        standin.add_doi("10.5281/zenodo.1", f"http://{dead}/zenodo/records/1")
        standin.add_doi("10.5281/zenodo.2", "https://records.example.org/records/2")
        monkeypatch.setenv("PANGEO_BINDER_DOI_RESOLVER", f"{standin.base}/doi")
        monkeypatch.setenv("PANGEO_BINDER_CONTENT_HOSTS",
                           f"zenodo=http://{dead}/zenodo,zenodo=https://records.example.org")
        for doi, cause in [("10.5281/zenodo.1", f"{dead} refused the connection"),
                           ("10.5281/zenodo.2", "cannot resolve host records.example.org")]:
            with pytest.raises(SourceError) as failure:
                records.fetch_record(RecordSource("zenodo", doi, doi), tmp_path / doi, ignore)
            assert str(failure.value) == f"cannot fetch {doi}: {cause}"
    finally:
        standin.close()


def test_a_library_log_record_reaches_the_json_log_without_its_traceback():
    script = """
import logging
from pangeo_binder.cli import Reporter, run_stage
from pangeo_binder.errors import SourceError

def stage():
    try:
        raise ConnectionError("no route")
    except ConnectionError:
        logging.getLogger("repo2docker").exception("Error during build")
    raise SourceError("cannot fetch 10.5281/zenodo.1: doi.org did not answer")

run_stage(Reporter(True, False), stage)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=False)
    assert (result.returncode, events(result)) == (1, [
        {"phase": "fetching", "message": "error: Error during build\n"},
        {"phase": "failed", "message": "cannot fetch 10.5281/zenodo.1: doi.org did not "
                                       "answer\n"}])


def test_the_shipped_dataverse_list():
    shipped = json.loads(records.DATAVERSE_INSTALLATIONS.read_text())
    assert shipped["source"].startswith("https://")
    datetime.date.fromisoformat(shipped["date"])
    hosts = [item["hostname"] for item in shipped["installations"]]
    assert len(hosts) == len(set(hosts)) > 100 and "dataverse.harvard.edu" in hosts
    assert list(records.dataverse_installations()) == shipped["installations"]

    from repo2docker.contentproviders import Dataverse

    # The script refreshes it from the list repo2docker's provider would download.
    assert runpy.run_path(str(UPDATE_SCRIPT))["DEFAULT_URL"] == \
        Dataverse.dataverse_installations_url


def test_the_dataverse_list_is_refreshed_from_its_source(tmp_path):
    standin = RecordsStandIn()
    try:
        standin.json["/data.json"] = {"installations": [
            {"name": "Two", "hostname": "two.example.org", "contact_email": "x@example.org"},
            {"name": "One", "hostname": "one.example.org", "lat": 1.0}]}
        result = subprocess.run([sys.executable, str(UPDATE_SCRIPT), f"{standin.base}/data.json",
                                 "--output", str(tmp_path / "hosts.json")],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        written = json.loads((tmp_path / "hosts.json").read_text())
        assert (written["source"], written["date"]) == (f"{standin.base}/data.json",
                                                        datetime.date.today().isoformat())
        assert written["installations"] == [{"name": "One", "hostname": "one.example.org"},
                                            {"name": "Two", "hostname": "two.example.org"}]
        missing = subprocess.run([sys.executable, str(UPDATE_SCRIPT),
                                  f"{standin.base}/nothing.json", "--output",
                                  str(tmp_path / "other.json")],
                                 capture_output=True, text=True, check=False)
        assert missing.returncode == 1 and missing.stderr.count("\n") == 1
        assert not (tmp_path / "other.json").exists()
    finally:
        standin.close()


def test_the_builder_image_carries_the_dataverse_list():
    from pangeo_binder.builder.plan import python_image_plan, service_image_plan

    python = python_image_plan("debian:bookworm-slim", "sha256:" + "0" * 64)
    assert "app/pangeo_binder/builder/dataverse_installations.json" in \
        service_image_plan(python, "builder", "debian:bookworm-slim").files


"""Records (Zenodo, Figshare, Dataverse, CKAN, Software Heritage) fetched through
repo2docker's content providers, against tests/helpers/records_standin.py: a loopback stand-in
for those services, which cannot be reached from here. Hydroshare's provider names its
hosts inside its code, so only its spelling and badge are tested."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from pangeo_binder.builder.fetch import checkout
from pangeo_binder.errors import SourceError
from pangeo_binder.events import ignore
from pangeo_binder.spec import parse_source
from tests.helpers.cli import run_cli
from tests.helpers.records_standin import RecordsStandIn, zip_of

FILES = {"binder/requirements.txt": b"xarray-einstats\n", "intro.ipynb": b'{"cells": []}'}


@pytest.fixture
def standin(monkeypatch) -> Iterator[RecordsStandIn]:
    server = RecordsStandIn()
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    yield server
    server.close()


def fetched(text: str) -> tuple[dict[str, bytes], str | None, str, str]:
    with checkout(parse_source(text), ignore) as files:
        contents = {name: (files.path / name).read_bytes() for name in files.files}
        return contents, files.revision, files.tree_id, files.source_url


def test_a_zenodo_doi_fetches_the_records_archive(standin):
    url = standin.add_zenodo(3242074, {"notebooks-1.0.zip": zip_of(FILES, "notebooks-1.0")})
    for spelling in ("10.5281/zenodo.3242074", "doi:10.5281/zenodo.3242074",
                     "https://doi.org/10.5281/zenodo.3242074",
                     "zenodo:10.5281/zenodo.3242074", url):
        contents, revision, _, source_url = fetched(spelling)
        assert contents == FILES, spelling
        assert revision == "3242074"
        assert source_url == url


def test_a_record_is_identified_by_its_files_like_a_directory(standin, tmp_path):
    standin.add_zenodo(1, {"a.zip": zip_of(FILES, "top")})
    standin.add_zenodo(2, {"a.zip": zip_of({**FILES, "intro.ipynb": b"{}"}, "top")})
    first, second = fetched("10.5281/zenodo.1")[2], fetched("10.5281/zenodo.2")[2]
    assert first == fetched("10.5281/zenodo.1")[2] and first != second
    for name, data in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    assert fetched(str(tmp_path))[2] == first


def test_figshare_dataverse_ckan_and_software_heritage(standin):
    standin.add_figshare(9782777, 2, {"repo.zip": zip_of(FILES)})
    dataverse = standin.add_dataverse("doi:10.7910/DVN/TJCLKP", FILES)
    ckan = standin.add_ckan("notebooks", FILES)
    swhid = standin.add_swh_directory("0123456789abcdef0123456789abcdef01234567", FILES)
    assert fetched("10.6084/m9.figshare.9782777.v2")[:2] == (FILES, "9782777.v2")
    assert fetched(dataverse)[:2] == (FILES, "doi:10.7910/DVN/TJCLKP")
    # CKAN resources are single files: a dataset is flat.
    contents, revision, _, _ = fetched(f"ckan:{ckan}")
    assert contents == {"requirements.txt": FILES["binder/requirements.txt"],
                        "intro.ipynb": FILES["intro.ipynb"]}
    assert revision.startswith("notebooks.v")
    assert fetched(swhid)[:2] == (FILES, swhid)


def test_an_archive_that_unpacks_outside_the_record_is_refused(standin, tmp_path):
    # A Software Heritage archive is a tar: a link out of the record must not be made.
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        link = tarfile.TarInfo(f"{'a' * 40}/escape")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path / "outside")
        archive.addfile(link)
        member = tarfile.TarInfo(f"{'a' * 40}/escape/owned")
        member.size = 3
        archive.addfile(member, io.BytesIO(b"bad"))
    (tmp_path / "outside").mkdir()
    standin.add_swh_directory("a" * 40, {})
    standin.blobs[f"/swh/api/1/vault/directory/{'a' * 40}/raw/"] = ("application/gzip",
                                                                    out.getvalue())
    with pytest.raises(SourceError, match="cannot fetch swh:1:dir"):
        fetched(f"swh:1:dir:{'a' * 40}")
    assert list((tmp_path / "outside").iterdir()) == []


def build_fails(tmp_path, *args: str, env: dict[str, str]) -> str:
    scratch = tmp_path / "tmpdir"
    scratch.mkdir(exist_ok=True)
    result = run_cli("build", *args, env={"TMPDIR": str(scratch), **env})
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("pangeo-binder: error: ")
    assert list(scratch.iterdir()) == []  # the fetched copy is gone
    return line


def test_a_record_the_service_does_not_have_is_one_line(standin, tmp_path):
    standin.add_doi("10.5281/zenodo.404", f"{standin.base}/zenodo/records/404")
    line = build_fails(tmp_path, "10.5281/zenodo.404", env=standin.env())
    assert line == (f"pangeo-binder: error: cannot fetch 10.5281/zenodo.404: {standin.base}"
                    "/zenodo/api/records/404 answered 404 Not Found")


def test_an_unregistered_doi_and_a_doi_of_no_known_service(standin, tmp_path):
    line = build_fails(tmp_path, "10.5281/zenodo.77", env=standin.env())
    assert line == ("pangeo-binder: error: DOI 10.5281/zenodo.77 is not registered "
                    f"({standin.base}/doi does not know it)")
    standin.add_doi("10.1234/elsewhere", "https://example.org/papers/1")
    line = build_fails(tmp_path, "10.1234/elsewhere", env=standin.env())
    assert line == ("pangeo-binder: error: 10.1234/elsewhere is no record of zenodo/figshare/"
                    "hydroshare/dataverse/ckan/swh (it names https://example.org/papers/1)")


def test_an_unreachable_resolver_is_one_line(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    line = build_fails(tmp_path, "10.5281/zenodo.1",
                       env={"PANGEO_BINDER_DOI_RESOLVER": f"http://127.0.0.1:{port}"})
    assert line == ("pangeo-binder: error: cannot look up DOI 10.5281/zenodo.1: "
                    f"127.0.0.1:{port} refused the connection")


def test_a_listing_naming_a_file_outside_the_record_is_refused(standin, tmp_path):
    standin.add_zenodo(66, {"../../escaped.txt": b"owned"})
    line = build_fails(tmp_path, "10.5281/zenodo.66", env=standin.env())
    assert line == ("pangeo-binder: error: the record names a file outside itself: "
                    f"'../../escaped.txt' ({standin.base}/zenodo/api/records/66/files)")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "tmpdir" / "escaped.txt").exists()


def test_a_bad_content_hosts_setting_is_one_line(tmp_path):
    line = build_fails(tmp_path, "https://example.org/notebooks",
                       env={"PANGEO_BINDER_CONTENT_HOSTS": "hydroshare=https://h.example"})
    assert line.startswith("pangeo-binder: error: PANGEO_BINDER_CONTENT_HOSTS: "
                           "'hydroshare=https://h.example' is not PROVIDER=URL")


def test_binderhubs_build_pod_passes_a_records_resolved_version_as_its_ref(standin, tmp_path):
    # BinderHub's Zenodo provider gives repo2docker `--ref RECORD_ID`: not a git ref.
    standin.add_doi("10.5281/zenodo.404", f"{standin.base}/zenodo/records/404")
    result = subprocess.run(
        [sys.executable, "-m", "pangeo_binder.builder.repo2docker", "--ref", "404",
         "--image=x:y", "--no-run", "--json-logs", "10.5281/zenodo.404"],
        capture_output=True, text=True, check=False,
        env={**os.environ, **standin.env(), "TMPDIR": str(tmp_path)})
    assert result.returncode == 1
    last = json.loads(result.stdout.splitlines()[-1])
    assert last == {"phase": "failed", "message": f"cannot fetch 10.5281/zenodo.404: "
                    f"{standin.base}/zenodo/api/records/404 answered 404 Not Found\n"}
    assert list(tmp_path.iterdir()) == []


def test_a_service_that_stops_answering_is_given_up_on(standin, monkeypatch):
    from pangeo_binder.builder import records

    monkeypatch.setattr(records, "_TIMEOUT", 1)  # 60 s in use
    standin.add_zenodo(5, {"a.zip": zip_of(FILES)})
    standin.stalled.add("/zenodo/api/records/5/files")
    with pytest.raises(SourceError, match=r"^cannot fetch 10.5281/zenodo.5: 127.0.0.1:\d+ "
                                          r"did not answer within 1 s$"):
        fetched("10.5281/zenodo.5")


def test_a_gitlab_shorthand_fetches_a_nested_project(tmp_path, monkeypatch):
    from tests.helpers.git_server import PrivateGitServer
    from tests.helpers.repos import git, git_repo

    (tmp_path / "served").mkdir()
    server = PrivateGitServer(tmp_path / "served")
    try:
        work = git_repo(tmp_path / "work", {k: v.decode() for k, v in FILES.items()})
        git(work, "tag", "v1")
        server.add("group/sub/project", work)
        monkeypatch.setenv("PANGEO_BINDER_GITLAB_HOSTNAME",
                           f"http://127.0.0.1:{server.server_port}")
        contents, revision, _, source_url = fetched("gl:group/sub/project@v1")
        assert contents == FILES
        assert revision == git(work, "rev-parse", "HEAD")
        assert source_url == f"http://127.0.0.1:{server.server_port}/group/sub/project.git"
        with pytest.raises(SourceError, match="ref 'v2' not found"):
            fetched("gl:group/sub/project@v2")
    finally:
        server.shutdown()


def test_a_record_naming_a_file_inside_this_network_is_refused(standin):
    # A CKAN resource may point anywhere; here at this machine by another name than the
    # configured host, as a record would point a build pod at the cloud metadata service.
    ckan = standin.add_ckan("inside", FILES)
    listing = standin.json["/ckan/api/3/action/package_show?id=inside"]
    inside = f"http://localhost:{standin.server_port}/ckan/dataset/inside/resource/0/x"
    listing["result"]["resources"][0]["url"] = inside  # type: ignore[index]
    with pytest.raises(SourceError, match=f"the record names {inside}, inside this network"):
        fetched(f"ckan:{ckan}")
    assert not any("/resource/0/" in line for line in standin.requests)

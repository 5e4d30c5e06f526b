"""Sources beyond git, built on the real engine: a Zenodo record by its DOI, through
repo2docker's Zenodo provider and tests/helpers/records_standin.py (a loopback stand-in for
doi.org and Zenodo, which cannot be reached from here), and a GitLab-style nested project
by its gl: shorthand, served by git's own HTTP backend (tests/helpers/git_server.py)."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers.cli import EXAMPLES, TEST_PREFIX, run_cli
from tests.helpers.engine import sh
from tests.helpers.git_server import PrivateGitServer
from tests.helpers.records_standin import RecordsStandIn, zip_of
from tests.helpers.repos import git, git_repo, write_tree

RECORD = 3242074
RUN = uuid.uuid4().hex[:8]
# The quickstart example with a README of this run's own, so each image is built here
# (in seconds, on the cached environment) and carries its own labels.
QUICKSTART = {path.relative_to(EXAMPLES / "quickstart").as_posix(): path.read_bytes()
              for path in sorted((EXAMPLES / "quickstart").rglob("*")) if path.is_file()}
RECORD_FILES = {**QUICKSTART, "README.md": f"Zenodo record {RUN}\n".encode()}
GITLAB_FILES = {**QUICKSTART, "README.md": f"GitLab project {RUN}\n".encode()}


@pytest.fixture(scope="module")
def standin():
    server = RecordsStandIn()
    # The record's one file is a release archive of the quickstart example, as Zenodo's
    # GitHub integration makes them.
    server.add_zenodo(RECORD, {"quickstart-v1.0.zip": zip_of(RECORD_FILES, "quickstart-v1.0")})
    yield server
    server.close()


def build(*args: str, env: dict[str, str]) -> tuple[str, str]:
    result = run_cli("build", *args, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip(), result.stderr


@pytest.fixture(scope="module")
def zenodo_image(docker_engine, standin) -> str:
    image, _ = build(f"10.5281/zenodo.{RECORD}", env=standin.env())
    return image


def test_a_zenodo_doi_builds_with_the_records_notebook(docker_engine, standin, zenodo_image):
    assert zenodo_image.startswith(f"{TEST_PREFIX}zenodo-{RECORD}:")
    assert f"GET /zenodo/api/records/{RECORD}/files" in standin.requests
    listing = sh(docker_engine, zenodo_image,
                 "ls /home/jovyan; cat /home/jovyan/binder/requirements.txt")
    assert "quickstart.ipynb" in listing and "xarray-einstats" in listing
    labels = docker_engine.client.images.get(zenodo_image).attrs["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == str(RECORD)
    assert labels["org.opencontainers.image.source"] == f"{standin.base}/zenodo/records/{RECORD}"


def test_the_same_record_gives_the_same_tag(docker_engine, standin, zenodo_image, tmp_path):
    again, _ = build(f"zenodo:10.5281/zenodo.{RECORD}", env=standin.env())
    assert again == zenodo_image
    # Its files are its content: as a directory they make the same image.
    directory = write_tree(tmp_path / "copy", {k: v.decode() for k, v in RECORD_FILES.items()})
    image, _ = build(str(directory), env=standin.env())
    assert image.rpartition(":")[2] == zenodo_image.rpartition(":")[2]


def test_a_gitlab_shorthand_builds_a_nested_project(docker_engine, tmp_path_factory):
    root = tmp_path_factory.mktemp("gitlab")
    (root / "served").mkdir()
    server = PrivateGitServer(root / "served")
    try:
        work = git_repo(root / "work", {k: v.decode() for k, v in GITLAB_FILES.items()})
        git(work, "tag", "v1")
        server.add("pangeo/tutorials/quickstart", work)
        env = {"PANGEO_BINDER_GITLAB_HOSTNAME": f"http://127.0.0.1:{server.server_port}"}
        image, _ = build("gl:pangeo/tutorials/quickstart@v1", env=env)
        assert image.startswith(f"{TEST_PREFIX}pangeo-tutorials-quickstart:")
        assert "quickstart.ipynb" in sh(docker_engine, image, "ls /home/jovyan")
        labels = docker_engine.client.images.get(image).attrs["Config"]["Labels"]
        assert labels["org.opencontainers.image.source"] == (
            f"http://127.0.0.1:{server.server_port}/pangeo/tutorials/quickstart.git")
    finally:
        server.shutdown()

"""BinderHub's build-pod command line on a machine that reaches no name server, on the real
engine: a git source (a `file://` URL, and git's HTTP backend on loopback) builds and ends
in `built` without one name lookup, so no record service is asked (repo2docker's own
command asked its Dataverse provider, which downloads its host list first, and failed
with a traceback). The builder's Python is made offline by tests/offline; the docker CLI
and the engine are not Python and keep their network, as a build pod's engine does."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.helpers.cli import TEST_PREFIX, names_asked, offline_env, run_builder
from tests.helpers.repos import served_notebooks

RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """A notebook repository of this run's own (so it is built here, in seconds, on the
    cached base), as a `file://` URL and served on loopback, and its commit."""
    with served_notebooks(tmp_path_factory.mktemp("offline"), f"offline {RUN}\n") as made:
        yield made


@pytest.mark.parametrize("kind", ["file", "http"])
def test_the_build_pod_command_line_builds_a_git_source_offline(docker_engine, sources,
                                                                kind, tmp_path):
    urls, commit = sources
    image = f"{TEST_PREFIX}offline-{kind}:{commit}"
    result = run_builder(f"--ref={commit}", f"--image={image}", urls[kind],
                         env={**offline_env(tmp_path / "names-asked"),
                              "PANGEO_BINDER_CONTENT_HOSTS": "",
                              "PANGEO_BINDER_DOI_RESOLVER": ""})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stderr == ""
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[-1] == {"phase": "built", "message": f"Built {image}\n", "imageName": image}
    assert "failed" not in {event["phase"] for event in events}
    assert names_asked(tmp_path / "names-asked") == []
    labels = docker_engine.client.images.get(image).attrs["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == commit

"""Real builds on the local Docker engine, through the CLI and the public API."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from pangeo_binder.builder.lock import load_base_lock
from pangeo_binder.builder.pipeline import build
from pangeo_binder.events import ignore
from pangeo_binder.settings import Settings
from pangeo_binder.spec import parse_source
from tests.helpers.cli import EXAMPLES, TEST_PREFIX, run_cli
from tests.helpers.engine import assert_no_container_left, containers, images_named, sh
from tests.helpers.repos import git, git_repo, write_tree


def build_ok(*args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    result = run_cli("build", *args, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip(), result.stderr


@pytest.fixture(scope="module")
def quickstart(docker_engine) -> str:
    image, _ = build_ok(str(EXAMPLES / "quickstart"))
    return image


def test_requirements_only_repo_builds_a_pinned_image(docker_engine, quickstart):
    assert quickstart.startswith(f"{TEST_PREFIX}quickstart:")
    attrs = docker_engine.client.images.get(quickstart).attrs
    labels = attrs["Config"]["Labels"]
    assert attrs["Config"]["User"] == "1000"
    assert labels["pangeo-binder.base-lock-hash"] == load_base_lock().digest
    assert labels["org.opencontainers.image.created"]
    assert "org.opencontainers.image.source" in labels
    out = sh(docker_engine, quickstart,
             "id -u; python -c 'import xarray, dask, zarr, xarray_einstats, dask_kubernetes; "
             "print(xarray.__version__, dask.__version__)'; jupyter lab --version; "
             "grep -c '^xarray-einstats==' /srv/pangeo-binder/repo.lock; ls /home/jovyan")
    pins = load_base_lock().pins
    assert out.splitlines()[0] == "1000"
    assert f"{pins['xarray']} {pins['dask']}" in out
    assert pins["jupyterlab"] in out
    assert "quickstart.ipynb" in out


def test_the_example_notebook_runs_in_its_image(docker_engine, quickstart):
    out = sh(docker_engine, quickstart,
             "jupyter nbconvert --to markdown --execute --stdout quickstart.ipynb 2>/dev/null")
    assert "July mean temperature: 25.0" in out
    assert "zarr round-trip identical: True" in out


def test_second_build_is_a_cache_hit_under_a_second(docker_engine, quickstart):
    settings = Settings.from_env()
    source = parse_source(str(EXAMPLES / "quickstart"))
    started = time.perf_counter()
    result = build(source, settings, ignore)
    elapsed = time.perf_counter() - started
    assert result.cached and result.image == quickstart
    assert elapsed < 1.0, f"cache hit took {elapsed:.2f}s"
    # Through the CLI: it says so, and docker build never runs.
    _, log = build_ok(str(EXAMPLES / "quickstart"), "--verbose")
    assert "Cache hit" in log
    assert "Building" not in log and "#1 " not in log


HEAVY_MODULES = ("docker", "requests", "urllib3", "rich", "conda_lock", "rattler", "ruamel",
                 "kr8s", "http.client")
HIT_PROBE = """
import sys
sys.argv = ["pangeo-binder", "build", sys.argv[1]]
from pangeo_binder.{module} import main
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
print("LOADED", sorted(m for m in {heavy!r} if m in sys.modules), code)
"""


def test_a_cache_hit_loads_no_engine_client_or_heavy_library(quickstart):
    """A rebuild of unchanged content only hashes its inputs and asks the engine one
    question: docker-py, requests, rich and the conda libraries would take longer to
    import than the whole answer (benchmarks/build.py measures it), and so would click
    with every command's definition. So `pangeo-binder build DIR` answers a hit before
    the CLI loads, with the lines and exit code the CLI's `build` gives it."""
    heavy = (*HEAVY_MODULES, "click")
    command, cli = (subprocess.run(
        [sys.executable, "-c", HIT_PROBE.format(module=module, heavy=heavy),
         str(EXAMPLES / "quickstart")], capture_output=True, text=True, check=False)
        for module in ("__main__", "cli"))
    assert command.stdout.splitlines() == [quickstart, "LOADED [] 0"], command.stderr[-2000:]
    assert cli.stdout.splitlines() == [quickstart, "LOADED ['click'] 0"], cli.stderr[-2000:]
    assert command.stderr == cli.stderr and UNCHANGED in command.stderr


BYTECODE_PROBE = """
import importlib.util, os, py_compile, sys, tempfile
for module in sys.argv[1:]:
    source = importlib.util.find_spec(module).origin
    with open(importlib.util.cache_from_source(source), "rb") as shipped:
        data = shipped.read()
    with tempfile.TemporaryDirectory() as scratch:  # the same source compiled again
        again = py_compile.compile(source, cfile=os.path.join(scratch, "again.pyc"),
                                   invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        with open(again, "rb") as fresh:
            same = fresh.read() == data
    # PEP 552 flags: 3 is a checked hash of the source, 0 its modification time.
    print(module, int.from_bytes(data[4:8], "little"), same)
"""


def test_every_environment_layer_ships_bytecode_that_depends_only_on_its_source(
        docker_engine, quickstart):
    """No session, kernel or Dask worker compiles the stack at start, and the bytecode of
    a lock is the same bytes wherever it is built: in the base (xarray, distributed,
    JupyterLab) and in the repository's layer (its extra, xarray-einstats)."""
    modules = ["xarray", "distributed", "jupyterlab", "xarray_einstats"]
    result = docker_engine.run(quickstart, ["python", "-c", BYTECODE_PROBE, *modules])
    assert result.exit_code == 0, result.output
    assert result.output.split() == " ".join(f"{m} 3 True" for m in modules).split(), \
        result.output


DEFERRED_IRI_PROBE = """
import sys, time
started = time.perf_counter()
import jupyter_server.serverapp  # what every session, smoke test and nbconvert loads
print("built at start:", "rfc3987_syntax.syntax_helpers" in sys.modules)
from jsonschema import Draft7Validator
iri = Draft7Validator({"format": "iri"}, format_checker=Draft7Validator.FORMAT_CHECKER)
print("still checked:", iri.is_valid("http://example.org/a") and not iri.is_valid("a b:c d"))
"""


def test_a_jupyter_server_start_builds_no_iri_parsers_yet_iris_are_still_checked(
        docker_engine, quickstart):
    """rfc3987-syntax's parsers (1.2 s of CPU) are built on first use, not at import."""
    result = docker_engine.run(quickstart, ["python", "-c", DEFERRED_IRI_PROBE])
    assert result.exit_code == 0, result.output
    assert result.output.split("\n")[-3:-1] == ["built at start: False", "still checked: True"], \
        result.output


UNCHANGED = "its inputs are unchanged"


def test_a_rebuild_finds_its_image_from_its_inputs_only_while_they_are_unchanged(
        docker_engine, tmp_path):
    repo = tmp_path / "rebuild"
    shutil.copytree(EXAMPLES / "quickstart", repo)
    (repo / "run.txt").write_text(uuid.uuid4().hex)
    image, log = build_ok(str(repo))
    assert UNCHANGED not in log
    again, log = build_ok(str(repo))
    assert again == image and UNCHANGED in log
    assert "Resolving" not in log and "cached lock" not in log  # nothing but the hash

    (repo / "quickstart.ipynb").write_text((repo / "quickstart.ipynb").read_text() + " ")
    edited, log = build_ok(str(repo))  # another input: built, never the recorded image
    assert edited != image and UNCHANGED not in log and "Building" in log
    assert build_ok(str(repo))[0] == edited

    # Another setting is another input; so is the image going away.
    strict, log = build_ok(str(repo), env={"PANGEO_BINDER_STRICT_BASE": "1"})
    assert strict == edited and UNCHANGED not in log and "Cache hit" in log
    docker_engine.remove(edited)
    rebuilt, log = build_ok(str(repo))
    assert rebuilt == edited and UNCHANGED not in log and "Building" in log


def test_editing_a_notebook_reuses_every_environment_layer(docker_engine, quickstart, tmp_path):
    repo = tmp_path / "quickstart"
    shutil.copytree(EXAMPLES / "quickstart", repo)
    (repo / "extra.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, '
                                      '"nbformat_minor": 5}')
    edited, log = build_ok(str(repo))
    assert edited != quickstart
    assert "Resolving" not in log  # the lock of an unchanged requirements.txt is reused
    before = docker_engine.client.images.get(quickstart).attrs["RootFS"]["Layers"]
    after = docker_engine.client.images.get(edited).attrs["RootFS"]["Layers"]
    assert len(before) == len(after)
    assert before[:-1] == after[:-1]  # only the repository copy differs


def test_apt_postbuild_and_start(docker_engine):
    image, _ = build_ok(str(EXAMPLES / "netcdf-tools"))
    out = sh(docker_engine, image,
             "id -u; echo $NETCDF_TOOLS_GREETING; stat -c %u data/sample.nc; "
             "grep -c 'made by postBuild' data/sample.cdl; which ncdump")
    assert out.splitlines() == ["1000", "set by binder/start", "1000", "1", "/usr/bin/ncdump"]


def test_git_source_at_a_tag_is_labelled_with_its_commit(docker_engine, tmp_path):
    remote = git_repo(tmp_path / "remote", {
        "binder/requirements.txt": (EXAMPLES / "quickstart/binder/requirements.txt").read_text(),
        "notebook.ipynb": "{}",
    })
    git(remote, "tag", "v1")
    sha = git(remote, "rev-parse", "HEAD")
    (remote / "later.ipynb").write_text("{}")
    git(remote, "add", "-A")
    git(remote, "commit", "--quiet", "-m", "later")
    image, log = build_ok(remote.as_uri(), "--ref", "v1")
    labels = docker_engine.client.images.get(image).labels
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.source"] == remote.as_uri()
    assert f"Fetched commit {sha}" in log
    assert "later.ipynb" not in sh(docker_engine, image, "ls")


def assert_failed_cleanly(engine, repo: Path, tmp_path: Path, expected: str) -> None:
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    before = containers(engine)
    result = run_cli("build", str(repo), env={"TMPDIR": str(scratch)})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("pangeo-binder: error: ") and expected in error, error
    assert images_named(engine, TEST_PREFIX + repo.name) == []  # not even a candidate tag
    assert_no_container_left(engine, before)
    assert list(scratch.iterdir()) == []


def test_failing_build_fails_cleanly(docker_engine, tmp_path):
    repo = tmp_path / "fails-to-build"
    shutil.copytree(EXAMPLES / "fails-to-build", repo)
    assert_failed_cleanly(docker_engine, repo, tmp_path,
                          "Unable to locate package pangeo-binder-no-such-package")


def test_image_failing_its_smoke_test_is_never_tagged(docker_engine, tmp_path):
    repo = write_tree(tmp_path / "breaks-zarr", {
        "binder/postBuild": "#!/bin/sh\nset -e\npip uninstall --yes --quiet zarr\n",
    })
    assert_failed_cleanly(docker_engine, repo, tmp_path,
                          "failed its smoke test: cannot import zarr")


def layers_holding(image: str, marker: bytes) -> tuple[list[str], int]:
    """The files of `docker save IMAGE` (layers, config) whose bytes contain `marker`,
    and how many layers there were."""
    saved = subprocess.Popen([Settings.from_env().docker_cli, "save", image],
                             stdout=subprocess.PIPE)
    found, layers = [], 0
    with tarfile.open(fileobj=saved.stdout, mode="r|") as archive:
        for member in archive:
            if not member.isfile():
                continue
            stream = archive.extractfile(member)
            tail = b""
            while chunk := stream.read(1 << 20):
                window = tail + chunk
                if marker in window:
                    found.append(member.name)
                    break
                tail = window[-len(marker):]
            layers += member.name.endswith("layer.tar")
    assert saved.wait() == 0
    return found, layers


@pytest.fixture
def test_ca(tmp_path) -> tuple[Path, bytes]:
    """A CA bundle: the host's plus a certificate made for this test alone; and a marker
    from the middle of that certificate (two whole base64 lines, as they are stored)."""
    key = tmp_path / "key.pem"
    cert = tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN=pangeo-binder-test-{tmp_path.name}", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    host_bundle = Settings.from_env().ca_bundle
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes((host_bundle.read_bytes() if host_bundle else b"") + cert.read_bytes())
    return bundle, b"\n".join(cert.read_bytes().splitlines()[5:7])


def test_ca_bundle_reaches_the_build_but_no_layer(docker_engine, tmp_path, test_ca):
    """The build gets a CA bundle holding a certificate made for this test alone; it must
    reach the build steps (they fetch from PyPI through it) yet appear in no layer."""
    bundle, marker = test_ca
    repo = write_tree(tmp_path / "ca-check", {
        "binder/requirements.txt": "xarray-einstats\n",
        # New content each run: BuildKit's cache does not key on secrets, so the same
        # repository would reuse an earlier run's postBuild layer.
        "nonce.txt": uuid.uuid4().hex,
        # Prove the bundle was there (by its hash, not its bytes) and usable for HTTPS.
        "binder/postBuild": "#!/bin/sh\nset -e\nsha256sum < \"$SSL_CERT_FILE\" | cut -c1-64 "
                            "> ca-seen.txt\npip download --quiet --no-deps --dest /tmp/dl "
                            "toolz && rm -rf /tmp/dl\n",
    })
    image, _ = build_ok(str(repo), "--ca-bundle", str(bundle))
    seen = sh(docker_engine, image, "cat ca-seen.txt; ls /run/secrets 2>&1 || true")
    assert seen.splitlines()[0] == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert "ca" not in seen.splitlines()[1:]
    found, layers = layers_holding(image, marker)
    assert found == [], f"the CA bundle is in {found}"
    assert layers > 5


def test_the_layer_scan_finds_a_bundle_copied_into_a_layer(docker_engine, tmp_path, test_ca):
    """The scan above can fail: a postBuild that copies the bundle into the image is
    caught, in the layer it wrote."""
    bundle, marker = test_ca
    repo = write_tree(tmp_path / "ca-leak", {
        "nonce.txt": uuid.uuid4().hex,
        "binder/postBuild": "#!/bin/sh\nset -e\ncp \"$SSL_CERT_FILE\" leaked-ca.pem\n"})
    image, _ = build_ok(str(repo), "--ca-bundle", str(bundle))
    found, _ = layers_holding(image, marker)
    assert len(found) == 1 and found[0].endswith("layer.tar"), found


def test_push_speaks_binderhubs_protocol(docker_engine, quickstart, local_registry):
    registry = local_registry
    result = run_cli("build", str(EXAMPLES / "quickstart"), "--push", "--json-logs",
                     "--image-prefix", f"{registry}/{TEST_PREFIX}")
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    phases = [e["phase"] for e in events]
    order = ["fetching", "building", "pushing", "built"]
    assert [p for p in order if p in phases] == order
    assert sorted(phases, key=order.index) == phases  # never back to an earlier phase
    assert all(e["message"].endswith("\n") for e in events)
    image = events[-1]["message"].split()[-1]
    assert image == f"{registry}/{TEST_PREFIX}quickstart:{quickstart.rpartition(':')[2]}"

    repository, _, tag = image.partition("/")[2].rpartition(":")
    with urllib.request.urlopen(f"http://{registry}/v2/{repository}/tags/list") as answer:
        assert tag in json.load(answer)["tags"]
    docker_engine.remove(image)
    docker_engine.client.images.pull(image)  # what a node does: the pushed image is whole
    docker_engine.remove(image)


def test_a_private_repository_builds_and_its_credentials_appear_nowhere(docker_engine,
                                                                          tmp_path):
    """A git URL carrying a user and token (a private repository) is fetched with them,
    and neither reaches the image's labels, the events, or the output."""
    from tests.helpers.git_server import PrivateGitServer

    token = "tok3n-" + uuid.uuid4().hex[:8]
    (tmp_path / "served").mkdir()
    server = PrivateGitServer(tmp_path / "served", "ada", token)
    server.add("private", git_repo(tmp_path / "work", {"analysis.ipynb": "{}"}))
    try:
        no_credentials = run_cli("build", server.url("private"))
        assert no_credentials.returncode == 1  # it is private indeed
        result = run_cli("build", server.url("private", f"ada:{token}"), "--json-logs")
        assert result.returncode == 0, result.stderr[-2000:]
        assert token not in result.stdout + result.stderr
        image = json.loads(result.stdout.splitlines()[-1])["message"].split()[-1]
        attributes = docker_engine.client.images.get(image).attrs
        assert attributes["Config"]["Labels"]["org.opencontainers.image.source"] == \
            server.url("private")
        assert token not in json.dumps(attributes)
    finally:
        server.shutdown()

"""`pangeo-binder verify` on real images: the quickstart example as built, and the same
image after a session changed it and was committed, as a running image drifts."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pangeo_binder.builder.kinds import python_image_for
from pangeo_binder.builder.lock import BASE_PYTHON, load_base_lock
from pangeo_binder.events import ignore
from pangeo_binder.settings import Settings
from tests.helpers.cli import EXAMPLES, TEST_PREFIX, run_cli
from tests.helpers.engine import assert_no_container_left, containers

# What a session does to its image before someone commits it: an older six from a wheel,
# a package no lock names, a file of xarray edited in place, the repository's extra
# uninstalled, and a .pth file that stops every Python the environment starts (verify
# must not run the image's environment to look at it).
DRIFT = """
set -e
uv pip install --quiet --offline --no-deps --python /srv/venv/bin/python /tmp/wheels/*.whl
site="$(/srv/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo '# edited in a session' >> "$site/xarray/__init__.py"
uv pip uninstall --quiet --python /srv/venv/bin/python xarray-einstats
echo 'import os; os._exit(3)' > "$site/zz-stop.pth"
"""


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("verify", *args)


@pytest.fixture(scope="module")
def quickstart(docker_engine) -> str:
    result = run_cli("build", str(EXAMPLES / "quickstart"))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def _tar(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in [directory, *sorted(directory.iterdir())]:
            info = tar.gettarinfo(str(path), arcname=f"wheels/{path.name}"
                                  if path != directory else "wheels")
            info.uid = info.gid = 1000
            if path.is_file():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def drifted(docker_engine, quickstart, tmp_path_factory) -> str:
    """The quickstart image after a session changed it, `docker commit`ed."""
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--dest", str(wheels), "six==1.16.0",
                    "tomli-w==1.2.0"], check=True, capture_output=True)
    client = docker_engine.client
    attrs = client.images.get(quickstart).attrs["Config"]
    container = client.containers.create(quickstart, [DRIFT], entrypoint=["sh", "-c"],
                                         user="1000", network_disabled=True)
    try:
        container.put_archive("/tmp", _tar(wheels))
        container.start()
        assert container.wait(timeout=300)["StatusCode"] == 0, container.logs().decode()
        image = f"{TEST_PREFIX}drifted:session"
        repository, _, tag = image.rpartition(":")
        container.commit(repository, tag, changes=[
            f"ENTRYPOINT {json.dumps(attrs['Entrypoint'])}", f"CMD {json.dumps(attrs['Cmd'])}"])
    finally:
        container.remove(force=True)
    return image


def test_a_clean_image_matches_its_lock_and_its_sbom_lists_xarray(docker_engine, quickstart,
                                                                   tmp_path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    sbom = tmp_path / "sbom.json"
    before = containers(docker_engine)
    result = verify(quickstart, "--sbom", str(sbom))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    summary = result.stderr.strip()
    assert summary.startswith(f"{quickstart} matches its lock: "), summary
    packages, files = (int(summary.split(": ")[1].split()[i]) for i in (0, 2))
    assert packages > len(load_base_lock().pins) and files > 10000, summary
    text = sbom.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    versions = {c["name"]: c["version"] for c in bom["components"]}
    assert versions["xarray"] == load_base_lock().pins["xarray"]
    assert "xarray-einstats" in versions
    xarray = next(c for c in bom["components"] if c["name"] == "xarray")
    assert xarray["purl"] == f"pkg:pypi/xarray@{versions['xarray']}"
    image = bom["metadata"]["component"]
    labels = docker_engine.client.images.get(quickstart).labels
    properties = {p["name"]: p["value"] for p in image["properties"]}
    for label in ("org.opencontainers.image.source", "org.opencontainers.image.created",
                  "pangeo-binder.version", "pangeo-binder.lock-hash",
                  "pangeo-binder.base-lock-hash", "pangeo-binder.content-hash"):
        assert properties[label] == labels[label]
    assert properties["pangeo-binder:image-id"] == docker_engine.image_id(quickstart)
    assert_no_container_left(docker_engine, before)


def test_a_drifted_image_names_each_package_and_what_changed(docker_engine, drifted,
                                                             tmp_path):
    pins = load_base_lock().pins
    before = containers(docker_engine)
    result = verify(drifted)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "   added  tomli-w 1.2.0: installed, but no lock names it" in lines
    assert " version  six: 1.16.0 installed, the lock pins 1.17.0" in lines
    assert (f"   files  xarray {pins['xarray']}: 1 file differs from its RECORD: "
            "xarray/__init__.py") in lines
    assert any(ln.startswith(" removed  xarray-einstats ") for ln in lines), lines
    assert " unowned  zz-stop.pth: in site-packages, but no package installed it" in lines
    assert len(lines) == 5, lines
    assert result.stderr.strip().startswith(
        f"{drifted} has drifted from its lock: 5 differences (1 added, 1 removed, "
        "1 at another version, 1 with changed files, 1 installed by no package)"), \
        result.stderr

    sbom = tmp_path / "sbom.json"
    result = verify(drifted, "--json", "--sbom", str(sbom))
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["matches"] is False and report["environment"] == "/srv/venv"
    changes = {d["name"]: d["change"] for d in report["differences"]}
    assert changes == {"tomli-w": "added", "six": "version", "xarray": "files",
                       "xarray-einstats": "removed", "zz-stop.pth": "unowned"}
    # The SBOM says what the image holds now.
    versions = {c["name"]: c["version"] for c in json.loads(sbom.read_text())["components"]}
    assert versions["six"] == "1.16.0" and "xarray-einstats" not in versions
    assert_no_container_left(docker_engine, before)


def test_what_cannot_be_verified_is_one_line_and_exit_2(docker_engine):
    settings = Settings.from_env()
    before = containers(docker_engine)
    cases = {
        f"{TEST_PREFIX}no-such-image:1": "no image ",
        # The OS image: no Python, nothing of pangeo-binder.
        settings.os_image: "has no /usr/bin/python3",
        # The OS + Python image: a Python, but no lock.
        python_image_for(docker_engine, settings, BASE_PYTHON, ignore).image:
            "carries no pangeo-binder lock",
    }
    for image, message in cases.items():
        result = verify(image)
        assert result.returncode == 2, (image, result.stderr)
        assert result.stdout == ""
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("pangeo-binder: error: ") and message in line, line
    assert_no_container_left(docker_engine, before)


def test_a_conda_image_is_checked_against_its_conda_lock(docker_engine, tmp_path, conda_env):
    repo = tmp_path / "repo"
    (repo / "binder").mkdir(parents=True)
    (repo / "binder" / "environment.yml").write_text(
        "channels: [conda-forge]\ndependencies:\n  - hello\n")
    built = run_cli("build", str(repo), env=conda_env)
    assert built.returncode == 0, built.stderr[-3000:]
    image = built.stdout.strip()
    sbom = tmp_path / "sbom.json"
    result = verify(image, "--json", "--sbom", str(sbom))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["kind"], report["environment"], report["packages"]) == ("conda",
                                                                           "/srv/conda", 3)
    assert report["files_checked"] >= 3
    purls = [c["purl"] for c in json.loads(sbom.read_text())["components"]]
    assert any(p.startswith("pkg:conda/hello@") and "build=" in p for p in purls), purls

    client = docker_engine.client
    container = client.containers.create(
        image, ["echo 'numcore 9.9' > /srv/conda/share/numcore/VERSION"],
        entrypoint=["sh", "-c"], user="1000", network_disabled=True)
    try:
        container.start()
        assert container.wait(timeout=120)["StatusCode"] == 0
        container.commit(f"{TEST_PREFIX}conda-drifted", "session")
    finally:
        container.remove(force=True)
    result = verify(f"{TEST_PREFIX}conda-drifted:session")
    assert result.returncode == 1, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("   files  numcore 1.1 (") and line.endswith(
        "1 file differs from its conda-meta record: share/numcore/VERSION"), line

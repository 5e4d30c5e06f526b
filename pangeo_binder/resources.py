"""Where the files pangeo-binder ships live: base images, environments, templates.

In a checkout they sit at the top of the repository, where maintainers edit them; an
installed wheel carries them in `pangeo_binder/_data`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_root() -> Path:
    bundled = _PACKAGE / "_data"
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent


def base_images_dir() -> Path:
    return data_root() / "base_images"


def environment_dir(name: str = "pangeo-notebook") -> Path:
    return data_root() / "environments" / name


def templates_dir() -> Path:
    return data_root() / "templates"


@cache
def template(name: str) -> jinja2.Template:
    """A template from templates/ (the repository Dockerfile); undefined values are
    errors, not empty strings."""
    import jinja2  # here: most commands render no template

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
    )
    return env.get_template(name)

"""The one way into a build for the commands that build (`build`, `launch`, `test`): an
unchanged directory's recorded image (pangeo_binder.builder.rebuild) before anything
heavy loads, else the pipeline. Sits above both, so that the pipeline, which records
what it built, never imports its caller."""

from __future__ import annotations

from ..events import Emit
from ..settings import Settings
from ..spec import Source
from .rebuild import rebuilt


def image_of(source: Source, settings: Settings, emit: Emit, *, push: bool = False,
             image_name: str | None = None, appendix: str = "") -> str:
    """The image of `source`: the recorded one when its inputs are unchanged, else the
    pipeline's build. The one way in for every command that builds, so that the
    shortcut's conditions live here only: a pushed or explicitly named image is
    always asked of the pipeline, and an appendix is no input the record knows."""
    if not push and image_name is None and not appendix.strip() \
            and (image := rebuilt(source, settings, emit)):
        return image
    from .pipeline import build  # only now: the heavy imports a cache hit never loads

    return build(source, settings, emit, push=push, image_name=image_name,
                 appendix=appendix).image

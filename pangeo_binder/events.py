"""Progress events: how stages report what they do without printing.

Stages call an `Emit` callback with `Event` values; the CLI decides how to show them
(rich on a terminal, plain lines, or JSON lines). The phases and the JSON shape are the
ones BinderHub reads from repo2docker build pods.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    FETCHING = "fetching"
    BUILDING = "building"
    PUSHING = "pushing"
    BUILT = "built"
    LAUNCHING = "launching"
    READY = "ready"
    # `pangeo-binder test`: a notebook's result, and the last event when all passed.
    TESTING = "testing"
    TESTED = "tested"
    FAILED = "failed"


@dataclass(frozen=True)
class Event:
    phase: Phase
    message: str
    # Raw tool output (docker build lines): shown in full only where the reader wants it.
    detail: bool = False
    # The image a `built` event is about; BinderHub's own events call it imageName.
    image: str | None = None
    # Fields a machine reads (a notebook's result), added to the JSON object.
    data: Mapping[str, Any] | None = None

    def to_json(self) -> str:
        message = self.message if self.message.endswith("\n") else self.message + "\n"
        data = {**(self.data or {}), "phase": str(self.phase), "message": message}
        if self.image is not None:
            data["imageName"] = self.image
        return json.dumps(data)


Emit = Callable[[Event], None]


def ignore(event: Event) -> None:
    """An `Emit` for callers that do not want progress."""

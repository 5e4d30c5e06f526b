"""One way to wait for something: ask again until it is there, or the time is up.

A probe answers either the thing waited for, or `Waiting(why)`: what is still missing,
told to the user whenever it changes and named when the time is up. A probe raises when
waiting longer cannot help (an image that cannot be pulled, a refusal).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Waiting:
    """A probe's answer while the thing waited for is not there yet."""

    why: str = ""


class Deadline:
    """A point in time `seconds` from now, on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() > self.end


def wait_until(probe: Callable[[], T | Waiting], timeout: float, *,
               timed_out: Callable[[str], Exception], every: float = 1.0,
               tell: Callable[[str], None] | None = None) -> T:
    """What `probe` answers once it is no `Waiting`, asking every `every` seconds; each
    new reason to wait goes to `tell`. After `timeout` seconds, raises
    `timed_out(last reason)`. The probe is always asked at least once."""
    deadline, said = Deadline(timeout), ""
    while True:
        answer = probe()
        if not isinstance(answer, Waiting):
            return answer
        if answer.why and answer.why != said:
            said = answer.why
            if tell is not None:
                tell(said)
        if deadline.passed():
            raise timed_out(said)
        time.sleep(every)


def wait_for(condition: Callable[[], bool], timeout: float, *,
             timed_out: Callable[[str], Exception], every: float = 1.0) -> None:
    """Return once `condition()` holds; `timed_out("")` after `timeout` seconds."""
    wait_until(lambda: True if condition() else Waiting(), timeout, timed_out=timed_out,
               every=every)

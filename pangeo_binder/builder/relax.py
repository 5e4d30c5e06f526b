"""`build --relax`: an old tutorial on today's stack, honestly.

A workshop's environment from 2018 (`python=3.6`, `numpy=1.15`, `pandas=0.23`) cannot be
rebuilt as written: no Python this machine builds runs it, and PyPI has no wheel of those
pins for any Python that does. `--relax` keeps the repository's package names and drops
what cannot be met, in two steps, so that no more goes than must:

1. the `python` pin when it excludes the base's Python, and every pin that no version
   the Pangeo base pins satisfies (lock.pin_conflicts finds them);
2. when uv still cannot resolve the rest on the base, every remaining version pin.

The result is resolved on the Pangeo base, whose versions win, never as a standalone
environment. Each dropped pin is recorded as a comment line at the top of the lock
(`# --relax dropped numpy: numpy=1.15 (...)`): the lock's text, and so its cache key
and the image's content hash, differ from an unrelaxed lock's, and the image's
`pangeo-binder.relaxed` label and the build's one summary line are read back from it,
with the version each package got instead.

Without `--relax`, such an environment ends in one line (`cannot_rebuild`) naming the
pins that cannot be had and why, and this way out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import LockError
from ..events import Emit, Event, Phase
from .binder_files import PYTHON_VERSIONS
from .fetch import Checkout
from .lock import (
    BASE_PYTHON,
    PYTHON_PLATFORM,
    Lock,
    PipInputs,
    marker_environment,
    pin_conflicts,
    resolve_pip_lock,
)
from .sandbox import Sandbox

RELAX_OPTION = "pangeo-binder build --relax"
RELAXED_LABEL = "pangeo-binder.relaxed"
SHOWN = 5  # dropped pins the summary line names; the label names all
_RECORD = re.compile(r"^# --relax dropped (\S+): (.+) \(([^()]*)\)$", re.M)
_MARKERS = marker_environment()


@dataclass(frozen=True)
class DroppedPin:
    """A version pin --relax left out: of `package` (a canonical PyPI name, or
    "python"), as the file `written` it, and why."""

    package: str
    written: str
    why: str

    def record(self) -> str:
        return f"# --relax dropped {self.package}: {self.written} ({self.why})"


def dropped_pins(lock: Lock) -> tuple[DroppedPin, ...]:
    """The pins a relaxed lock's records say were dropped; () for any other lock."""
    return tuple(DroppedPin(*match.groups()) for match in _RECORD.finditer(lock.text))


def now(pin: DroppedPin, lock: Lock) -> str:
    """What the package got instead of its pin: the lock's version, the base's Python."""
    if pin.package == "python":
        return lock.python or BASE_PYTHON
    return lock.pins.get(pin.package, "not installed")


def label(lock: Lock) -> str:
    """The image's pangeo-binder.relaxed label: every dropped pin and its new version."""
    return ", ".join(f"{pin.written} -> {now(pin, lock)}" for pin in dropped_pins(lock))


def summary(name: str, lock: Lock) -> str:
    """The build's one line on what --relax dropped."""
    pins = dropped_pins(lock)
    if not pins:
        return (f"Notice: --relax dropped no pin of {name}: it builds on the Pangeo base "
                "as written")
    shown = ", ".join(f"{pin.written} (now {now(pin, lock)})" for pin in pins[:SHOWN])
    more = f" and {len(pins) - SHOWN} more" if len(pins) > SHOWN else ""
    count = f"{len(pins)} pin{'' if len(pins) == 1 else 's'}"
    return (f"Notice: --relax dropped {count} of {name}: {shown}{more}; built on the "
            f"Pangeo base (label {RELAXED_LABEL} lists every one)")


def unpinned(line: str) -> str | None:
    """A requirement line without its version (name, extras and marker kept); None for
    a line that is no requirement with a version (a URL, an option, a bare name)."""
    try:
        requirement = Requirement(line.split(" #", 1)[0].strip())
    except InvalidRequirement:
        return None
    if not requirement.specifier or requirement.url:
        return None
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    marker = f"; {requirement.marker}" if requirement.marker else ""
    return f"{requirement.name}{extras}{marker}"


def _drop(text: str, lines: Mapping[int, str], written: Mapping[str, str],
          why: Callable[[Requirement], str]) -> tuple[str, list[DroppedPin]]:
    """`text` with the requirements at line numbers `lines` (number -> the requirement)
    unpinned, and what was dropped."""
    out, dropped = text.splitlines(), []
    for number, line in lines.items():
        bare = unpinned(line)
        if bare is None:
            continue
        requirement = Requirement(line)
        out[number - 1] = bare
        dropped.append(DroppedPin(canonicalize_name(requirement.name),
                                  written.get(line) or line, why(requirement)))
    return "".join(f"{ln}\n" for ln in out), dropped


def drop_conflicts(text: str, pins: Mapping[str, str], name: str,
                   written: Mapping[str, str] = {}) -> tuple[str, list[DroppedPin]]:
    """Step 1: unpin each requirement no version the base pins satisfies."""
    conflicts = {c.number: c.line for c in pin_conflicts(text, pins, name, written)}
    return _drop(text, conflicts, written,
                 lambda r: f"the Pangeo base pins {pins[canonicalize_name(r.name)]}")


def drop_all(text: str, written: Mapping[str, str] = {}) -> tuple[str, list[DroppedPin]]:
    """Step 2: unpin every requirement that still has a version (and applies here)."""
    lines = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")) and unpinned(line) is not None:
            marker = Requirement(line).marker
            if marker is None or marker.evaluate(_MARKERS):
                lines[number] = line
    return _drop(text, lines, written, lambda r: "no resolution on the base keeps it")


def _relaxed_inputs(inputs: PipInputs, text: str,
                    dropped: Sequence[DroppedPin]) -> PipInputs:
    """`inputs` resolving `text` instead, on the base's Python, with the records of
    `dropped` first: in the text (the cache key) and in the lock's header (the label)."""
    records = tuple(pin.record() for pin in dropped)
    full = "".join(f"{line}\n" for line in records) + text
    # uv reads the requirements from the repository's file or a generated input: each
    # gets the relaxed text in place of the original, at the same path.
    extra = {k: (full if v == inputs.text else v) for k, v in inputs.extra.items()}
    if not inputs.files and full not in extra.values():  # only a Python was asked for
        extra["relaxed.in"] = full
    return replace(inputs, text=full, python=BASE_PYTHON, extra=extra,
                   replaced={file: full for file in inputs.files},
                   header=(*inputs.header, *records))


def resolve_relaxed(inputs: PipInputs, python_dropped: str | None, checkout: Checkout,
                    base: Lock, cache_dir: Path, emit: Emit, sandbox: Sandbox) -> Lock:
    """The repository's requirements, relaxed (the module's steps), resolved on the
    Pangeo base; the build's summary line says what was dropped. `python_dropped` is the
    python pin as written, when it excludes the base's Python."""
    name = inputs.name
    dropped = [DroppedPin("python", python_dropped,
                          f"the Pangeo base runs Python {BASE_PYTHON}")] if python_dropped else []
    text, conflicting = drop_conflicts(inputs.text, base.pins, name, inputs.written)
    dropped += conflicting
    try:
        lock = resolve_pip_lock(_relaxed_inputs(inputs, text, dropped), checkout, base,
                                cache_dir, emit, sandbox, strict=True)
    except LockError as exc:
        text, rest = drop_all(text, inputs.written)
        if not rest:
            raise
        why = str(exc) if len(str(exc)) <= 240 else f"{str(exc)[:240]}..."
        emit(Event(Phase.BUILDING, f"--relax drops the other pins of {name} too: {why}"))
        try:
            lock = resolve_pip_lock(_relaxed_inputs(inputs, text, dropped + rest),
                                    checkout, base, cache_dir, emit, sandbox, strict=True)
        except LockError as again:
            raise LockError(f"{again}, even without any version pin (--relax)") from None
    emit(Event(Phase.BUILDING, summary(name, lock)))
    return lock


# One container checks every pin, each against every Python the PyPI path builds, until
# one has a wheel of it: "ok PY", "nowheel" (uv found the version but no wheel for any
# of them), "none" (no release matches), or "error" (uv could not say: the network).
_WHEEL_CHECK = r"""
check() {
    verdict=none
    for python in $PYTHONS; do
        if uv pip compile "$1" --no-deps --only-binary :all: --python-version "$python" \
                --python-platform "$PLATFORM" --no-header --quiet >/dev/null 2>"$1.err"; then
            echo "$1 ok $python"; return
        fi
        if grep -q "has no usable wheels" "$1.err"; then verdict=nowheel
        elif ! grep -q "No solution found" "$1.err"; then echo "$1 error"; return
        fi
    done
    echo "$1 $verdict"
}
for file in pin-*.in; do check "$file" & done
wait
"""


def pins_without_wheels(sandbox: Sandbox, requirements: Sequence[str]) -> list[str]:
    """The pinned requirements of which PyPI has no wheel for any Python the PyPI path
    builds (asked of uv in `sandbox`); a pin uv could not check is not named."""
    pinned = [line for line in requirements if unpinned(line) is not None]
    if not pinned:
        return []
    files = {f"pin-{i}.in": f"{line}\n".encode() for i, line in enumerate(pinned)}
    result = sandbox.run(
        ["sh", "-c", f"PYTHONS='{' '.join(PYTHON_VERSIONS)}' PLATFORM={PYTHON_PLATFORM}\n"
         + _WHEEL_CHECK], files)
    verdicts = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    return [line for i, line in enumerate(pinned)
            if verdicts.get(f"pin-{i}.in") == "nowheel"]


def cannot_rebuild(name: str, python_written: str, conda_failure: str,
                   without_wheels: Sequence[str], unchecked: str = "") -> LockError:
    """The one line of an environment that cannot be rebuilt as written: its Python,
    what the conda path said, the pins PyPI has no wheel of (or why they could not be
    checked), and the way out."""
    why_conda = conda_failure.split("; ")[0]
    parts = [f"{python_written} is no Python the PyPI path builds ({PYTHON_VERSIONS[0]} to "
             f"{PYTHON_VERSIONS[-1]}), and the conda path failed: {why_conda}"]
    if without_wheels:
        parts.append(f"{', '.join(without_wheels)} "
                     f"{'has' if len(without_wheels) == 1 else 'have'} no wheel on PyPI "
                     f"for Python {PYTHON_VERSIONS[0]} to {PYTHON_VERSIONS[-1]}")
    if unchecked:
        parts.append(f"its pins' wheels could not be checked ({unchecked})")
    return LockError(f"{name} cannot be rebuilt as written: {'; '.join(parts)}; "
                     f"`{RELAX_OPTION}` builds it on today's Pangeo base, keeping its "
                     "package names and dropping the pins that cannot be met")

"""Checks of built images: does a repository still work in its image (`notebooks`), and
does the image still hold what its lock says (`verify`)?"""

from __future__ import annotations

from pathlib import Path

from ..errors import PangeoBinderError


def refuse_unwritable(path: Path | None, what: str = "") -> None:
    """Before any work: a report file named on the command line can be written (its
    directory exists, and it is not a directory itself). `what` prefixes its name."""
    if path is None:
        return
    if not path.parent.is_dir():
        raise PangeoBinderError(f"cannot write {what}{path}: no directory {path.parent}")
    if path.is_dir():
        raise PangeoBinderError(f"cannot write {what}{path}: it is a directory")

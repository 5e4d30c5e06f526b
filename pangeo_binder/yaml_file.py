"""Reading the YAML files users write (workshop files, environment.yml), with errors that
name the file and line."""

from __future__ import annotations

from typing import Any

from .errors import PangeoBinderError


def load_yaml(text: str, name: str, error: type[PangeoBinderError]) -> Any:
    """Parse `text` (the content of file `name`); malformed YAML raises `error` with the
    line of the problem."""
    from ruamel.yaml import YAML  # here: most builds read no YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{name}{where}: not valid YAML ({problem})") from None

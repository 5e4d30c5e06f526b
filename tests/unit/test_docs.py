"""The documentation site builds without a warning, and its command-line reference
holds every command and option a user can type."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from pangeo_binder.cli import main
from tests.helpers.cli import REPO_ROOT


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "--fail-on-warning", "--keep-going", "--quiet",
         "-b", "html", str(REPO_ROOT / "docs"), str(out)],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def commands(group: click.Group, path: tuple[str, ...] = ()):
    """Every (path, command) under `group`, nested groups included."""
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def test_the_reference_names_every_command_and_option(site):
    page = (site / "reference" / "cli.html").read_text(encoding="utf-8")
    missing = []
    for path, command in commands(main):
        anchor = "-".join(("pangeo-binder", *path))
        if f'id="{anchor}"' not in page:
            missing.append(" ".join(path))
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in (*param.opts, *param.secondary_opts):
                    if f'id="cmdoption-{anchor}-{opt.lstrip("-")}"' not in page:
                        missing.append(f"{' '.join(path)} {opt}")
    assert not missing, missing
    assert len(list(commands(main))) >= 10


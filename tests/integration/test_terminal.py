"""The image's environment everywhere a user looks: JupyterLab's terminal, login shells and
interactive shells find the environment's `python`, `jupyter`, `dask` and `uv` first.

JupyterLab's terminal runs `$SHELL -l` (or `sh -l`), and Debian's /etc/profile resets
PATH in a login shell; base_images/python puts the environment back in front
(/etc/profile.d/pangeo-binder.sh) and sets SHELL=/bin/bash. The main test goes through
JupyterLab's own terminal API in a session started by `pangeo-binder launch`."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from pathlib import Path

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.helpers.cli import EXAMPLES, run_cli
from tests.helpers.repos import write_tree

# Each answer is printed under a name that the echoed command line does not contain
# (`%s` there, the value here), so the output can be told apart from the echo.
COMMANDS = ("printf 'PYTHON=%s\\n' \"$(command -v python)\"; "
            "python -c 'import xarray, sys; print(\"PREFIX=\" + sys.prefix)'; "
            "for c in jupyter dask uv; do printf 'CMD=%s\\n' \"$(command -v $c)\"; done; "
            "printf 'SHELL=%s\\n' \"$SHELL\"; printf 'DONE=%s\\n' $((6 * 7))\r")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def build_ok(*args: str, env: dict[str, str] | None = None) -> str:
    result = run_cli("build", *args, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def sh(engine, image: str, *command: str) -> list[str]:
    result = engine.run(image, list(command))
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


@pytest.fixture(scope="module")
def quickstart(docker_engine) -> str:
    return build_ok(str(EXAMPLES / "quickstart"))


@pytest.fixture
def session(quickstart) -> tuple[str, str]:
    """A local session of the quickstart image, as `pangeo-binder launch` starts it:
    (base URL, token)."""
    result = run_cli("launch", quickstart)
    assert result.returncode == 0, result.stderr[-2000:]
    base, token = result.stdout.strip().split("/lab?token=")
    yield base, token
    assert run_cli("stop", quickstart).returncode == 0


async def type_in_terminal(base: str, token: str, line: str, until: str,
                           timeout: float = 60) -> str:
    """Open a terminal through JupyterLab's API, type `line` into it over the terminado
    websocket and return what it printed (escape sequences and carriage returns removed)
    once `until` is in it."""
    headers = {"Authorization": f"token {token}"}
    request = urllib.request.Request(f"{base}/api/terminals", data=b"", method="POST",
                                     headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        name = json.load(answer)["name"]
    ws_url = base.replace("http://", "ws://", 1) + f"/terminals/websocket/{name}"
    connection = await websocket_connect(HTTPRequest(ws_url, headers=headers))
    output = ""
    try:
        async with asyncio.timeout(timeout):
            # The shell's prompt says it is ready (terminado sends ["setup", {}] first).
            while not re.search(r"[$#] $", output):
                output += await read_stdout(connection)
            connection.write_message(json.dumps(["stdin", line]))
            while until not in output:
                output += await read_stdout(connection)
    except TimeoutError:
        pytest.fail(f"the terminal did not print {until!r}; it printed:\n{clean(output)}")
    finally:
        connection.close()
        delete = urllib.request.Request(f"{base}/api/terminals/{name}", method="DELETE",
                                        headers=headers)
        urllib.request.urlopen(delete, timeout=30).close()
    return clean(output)


async def read_stdout(connection) -> str:
    message = await connection.read_message()
    assert message is not None, "the terminal closed its websocket"
    kind, *content = json.loads(message)
    return content[0] if kind == "stdout" else ""


def clean(output: str) -> str:
    return ANSI.sub("", output).replace("\r", "")


def values(output: str, key: str) -> list[str]:
    return [line.removeprefix(f"{key}=") for line in output.splitlines()
            if line.startswith(f"{key}=") and "%s" not in line]


def test_jupyterlabs_terminal_has_the_environment(session):
    base, token = session
    output = asyncio.run(type_in_terminal(base, token, COMMANDS, "DONE=42"))
    assert values(output, "PYTHON") == ["/srv/venv/bin/python"], output
    assert values(output, "PREFIX") == ["/srv/venv"], output
    assert values(output, "CMD") == ["/srv/venv/bin/jupyter", "/srv/venv/bin/dask",
                                     "/usr/local/bin/uv"], output
    assert values(output, "SHELL") == ["/bin/bash"], output


LOGIN_CHECK = ('printf "%s\\n" "$(command -v python)" "$(command -v jupyter)" '
               '"$(command -v dask)" "$(command -v uv)" "${PATH%%:*}"')


# The first directory on PATH: a login shell's profile puts the environment first (and
# ~/.local/bin before it once that exists); the image's PATH starts with ~/.local/bin,
# as repo2docker's does.
@pytest.mark.parametrize(("shell", "first"), [("sh -lc", "/srv/venv/bin"),
                                              ("bash -lc", "/srv/venv/bin"),
                                              ("bash -ic", "/home/jovyan/.local/bin")])
def test_shells_find_the_pip_environment(docker_engine, quickstart, shell, first):
    """Login shells (`sh -l` is what JupyterLab runs where SHELL is unset) and an
    interactive bash, whose /etc/bash.bashrc keeps the image's PATH."""
    *program, flags = shell.split()
    out = sh(docker_engine, quickstart, *program, flags, LOGIN_CHECK)
    # An interactive bash without a terminal warns about job control first.
    assert out[-5:] == ["/srv/venv/bin/python", "/srv/venv/bin/jupyter", "/srv/venv/bin/dask",
                        "/usr/local/bin/uv", first], out


def test_login_shells_find_the_conda_environment(docker_engine, tmp_path: Path, conda_env):
    # The test channel's `python` is a stand-in over the image's Python
    # (tests/helpers/conda_channel.py); it has no Jupyter or Dask.
    repo = write_tree(tmp_path / "repo", {"binder/environment.yml": (
        "channels: [conda-forge]\ndependencies:\n  - python\n  - hello\n")})
    image = build_ok(str(repo), env=conda_env)
    for shell in ("sh", "bash"):
        out = sh(docker_engine, image, shell, "-lc",
                 'printf "%s\\n" "$(command -v python)" "$(command -v hello)" "${PATH%%:*}" '
                 '"$SHELL"; case ":$PATH:" in *:/srv/venv/bin:*) echo "venv on PATH";; esac')
        assert out == ["/srv/conda/bin/python", "/srv/conda/bin/hello", "/srv/conda/bin",
                       "/bin/bash"], (shell, out)

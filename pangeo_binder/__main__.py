"""`pangeo-binder` (the installed command) and `python -m pangeo_binder`.

`pangeo-binder build DIR`, with nothing else, is first answered here, before the CLI
loads: a rebuild of a directory whose inputs are unchanged needs only their hash and one
question to the engine, and importing click and every command's definition would take
longer than that whole answer. Anything else, and a rebuild whose inputs were never
built, goes to the CLI (`cli`), which parses it and builds.
"""

from __future__ import annotations

import os
import sys


def _rebuilt(directory: str) -> bool:
    """`build DIRECTORY` up to its cache hit, as the CLI's `build` does it (the same
    settings, events, error lines and exit codes), and on a hit the image's name on
    stdout. False when it is no hit: then the CLI builds."""
    from .builder.rebuild import rebuilt
    from .progress import Reporter, echo, run_stage
    from .settings import Settings
    from .spec import parse_source

    reporter = Reporter(json_logs=False, verbose=False)
    image = run_stage(reporter, lambda: rebuilt(parse_source(directory), Settings.from_env(),
                                                reporter))
    if image is None:
        return False
    try:
        echo(str(image))
    except BrokenPipeError:
        # The reader went away: exit 1 quietly, as click does, and send what Python
        # flushes at exit nowhere instead of into the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    return True


def main() -> None:
    args = sys.argv[1:]
    # `build` and one word that is no option (--help, --json-logs ...): a directory,
    # perhaps an unchanged one.
    if len(args) == 2 and args[0] == "build" and not args[1].startswith("-") \
            and _rebuilt(args[1]):
        return
    from .cli import main as cli

    cli()


if __name__ == "__main__":
    main()

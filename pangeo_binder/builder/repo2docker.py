"""`jupyter-repo2docker` as BinderHub's build pods call it, built by pangeo-binder.

BinderHub's KubernetesBuildExecutor runs, in a pod with the Docker socket mounted:

    jupyter-repo2docker --ref REF --image IMAGE --no-clean --no-run --json-logs
        --user-name=jovyan --user-id=1000 [--appendix TEXT] [--push]
        [--build-memory-limit N] REPO_URL

and reads JSON lines with `phase` and `message` until `built` or `failed`. The builder
image (base_images/pangeo-binder, target `builder`) puts this module behind that name, so
a BinderHub needs only its `build_image` setting changed; so does a pip install of
pangeo-binder (pyproject.toml), whose dependency jupyter-repo2docker brings a command of
that name too: repo2docker's own, which offers every URL to its record providers first
(and so needs Dataverse's host list from the internet to build a git repository). Any
other repo2docker option is refused with one line naming it: silently ignoring, say,
`--volume` would build something other than what was asked for.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import PangeoBinderError
from ..settings import NOTEBOOK_USER

PROG = "jupyter-repo2docker"


class _Parser(argparse.ArgumentParser):
    json_logs = False  # set before parsing: with --json-logs, every line is JSON

    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, not argparse's usage block: build pod logs are read by people
        # looking at a failed launch.
        line = f"{PROG} (pangeo-binder): error: {message}"
        if self.json_logs:
            from ..events import Event, Phase

            print(Event(Phase.FAILED, line).to_json(), flush=True)
            self.exit(2)
        self.exit(2, line + "\n")


def _parser() -> _Parser:
    parser = _Parser(
        prog=PROG, allow_abbrev=False,
        description="Build a repository's pinned Pangeo image the way BinderHub's build "
                    "pods ask repo2docker to (pangeo-binder's builder).")
    parser.add_argument("repo", help="git URL (or gh:org/repo) of the repository")
    parser.add_argument("--ref", help="branch, tag or commit to build")
    parser.add_argument("--image", "--image-name", dest="image", required=True,
                        help="name[:tag] to give the image")
    parser.add_argument("--push", action="store_true", help="push the image when built")
    parser.add_argument("--json-logs", action="store_true",
                        help="JSON lines with phase and message (BinderHub's protocol)")
    parser.add_argument("--no-run", action="store_true",
                        help="only build (the only mode this builder has)")
    parser.add_argument("--no-clean", action="store_true",
                        help="accepted: the fetched checkout is temporary either way")
    parser.add_argument("--user-name", default=NOTEBOOK_USER[0],
                        help=f"must be {NOTEBOOK_USER[0]}, the user of every image")
    parser.add_argument("--user-id", type=int, default=NOTEBOOK_USER[1],
                        help=f"must be {NOTEBOOK_USER[1]}")
    parser.add_argument("--appendix", default="",
                        help="Dockerfile text added at the end of the build")
    parser.add_argument("--build-memory-limit",
                        help="accepted; BuildKit does not apply it, the build pod's "
                             "memory limit does")
    return parser


def _names_a_ref(repo: str) -> bool:
    """Whether `--ref` means a git ref for `repo`. For a record (a DOI, a record URL)
    BinderHub passes the version it resolved, which the record itself names, as
    repo2docker's content providers ignore it too."""
    from ..spec import RecordSource, parse_source

    try:
        return not isinstance(parse_source(repo), RecordSource)
    except PangeoBinderError:
        return True  # the parse with the ref says what is wrong


def main(argv: Sequence[str] | None = None) -> None:
    from ..events import Event, Phase
    from ..progress import Reporter, run_stage
    from ..settings import Settings
    from ..spec import parse_source
    from .pipeline import build

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    parser.json_logs = "--json-logs" in argv
    args, unknown = parser.parse_known_args(argv)
    if options := [arg.split("=", 1)[0] for arg in unknown if arg.startswith("-")]:
        parser.error(f"unsupported repo2docker option {', '.join(options)}: this builder "
                     "accepts only what BinderHub's build pods pass (see --help)")
    if unknown:
        parser.error(f"unexpected argument {unknown[0]!r}")
    if not args.no_run:
        parser.error("running the image is not supported, pass --no-run "
                        "(pangeo-binder launch runs images)")
    if (args.user_name, args.user_id) != NOTEBOOK_USER:
        parser.error(f"the notebook user is always {NOTEBOOK_USER[0]} "
                        f"(uid {NOTEBOOK_USER[1]}), not {args.user_name} (uid {args.user_id})")
    reporter = Reporter(args.json_logs, verbose=False)

    def stage() -> object:
        if args.build_memory_limit:
            reporter(Event(Phase.BUILDING, "Note: --build-memory-limit is not applied by "
                                           "BuildKit; the build pod's own limit holds"))
        try:
            source = parse_source(args.repo, args.ref if _names_a_ref(args.repo) else None)
        except PangeoBinderError as exc:
            reporter(Event(Phase.FAILED, str(exc)))  # the stream must end in a phase
            raise
        # The user BinderHub asked for reaches a repository's own Dockerfile as its
        # NB_USER and NB_UID build arguments, as with repo2docker.
        settings = Settings.from_env().with_overrides(
            notebook_user=(args.user_name, args.user_id))
        return build(source, settings, reporter, push=args.push,
                     image_name=args.image, appendix=args.appendix)

    result = run_stage(reporter, stage)
    if not args.json_logs:
        print(result.image)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv[1:])

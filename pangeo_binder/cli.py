"""The `pangeo-binder` command: thin click commands over the pipeline stages.

No logic lives here: commands parse options, call a stage, draw its events and turn a
`PangeoBinderError` into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import click

from . import __version__
from .errors import PangeoBinderError
from .events import Event, Phase
from .progress import Reporter, run_stage


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pangeo-binder")
def main() -> None:
    """Turn repositories of notebooks into pinned, reproducible Pangeo images."""


@main.command()
@click.argument("source", required=False)
@click.option("--from", "workshop_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Build and push every repository of a workshop file instead.")
@click.option("--parallel", type=click.IntRange(1, 8), default=2, show_default=True,
              help="With --from: builds at a time.")
@click.option("--ref", help="Branch, tag or commit of a git source (default: remote HEAD).")
@click.option("--image-prefix", help="Registry/name prefix of the image "
              "[env PANGEO_BINDER_IMAGE_PREFIX; default pangeo-binder/].")
@click.option("--image-name", help="Exact image name[:tag] instead of prefix + slug.")
@click.option("--push", is_flag=True, help="Push the image to its registry.")
@click.option("--json-logs", is_flag=True,
              help="One JSON object per line with `phase` and `message` (BinderHub's protocol).")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CA bundle for HTTPS inside the build, passed as a BuildKit secret "
              "[default: the file SSL_CERT_FILE, PIP_CERT or REQUESTS_CA_BUNDLE names].")
@click.option("--no-ca-bundle", is_flag=True, help="Pass no CA bundle to the build.")
@click.option("--os-image", help="OS image to build on [env PANGEO_BINDER_OS_IMAGE; "
              "default debian:bookworm-slim].")
@click.option("--strict-base", is_flag=True, default=None,
              help="Refuse pins that move Pangeo base packages instead of building a "
              "standalone environment [env PANGEO_BINDER_STRICT_BASE].")
@click.option("--relax", is_flag=True, default=None,
              help="Build an old repository on today's Pangeo base: keep its package names, "
              "drop the version pins (and the python pin) that cannot be met, and record "
              "each in the image's pangeo-binder.relaxed label [env PANGEO_BINDER_RELAX].")
@click.option("--appendix", default="", metavar="TEXT",
              help="Dockerfile lines added at the end of the build, as a BinderHub "
              "operator's appendix (repo2docker's --appendix); the image still ends as "
              "the notebook user.")
@click.option("-v", "--verbose", is_flag=True, help="Show every line of docker build.")
def build(source: str | None, workshop_file: Path | None, parallel: int, ref: str | None,
          image_prefix: str | None, image_name: str | None, push: bool, json_logs: bool,
          ca_bundle: Path | None, no_ca_bundle: bool, os_image: str | None,
          strict_base: bool | None, relax: bool | None, appendix: str,
          verbose: bool) -> None:
    """Build the pinned Pangeo image of SOURCE: a directory, a git URL, gh:org/repo[@ref],
    gl:group/project[@ref], gist:user/id, or a record (a DOI, a record URL, a SWHID,
    zenodo:DOI ...).

    Prints the image name on stdout. With --from, builds and pushes a workshop's
    repositories a few at a time and prints a summary.
    """
    from .builder.rebuild import rebuilt
    from .settings import Settings
    from .spec import parse_source

    if (source is None) == (workshop_file is None):
        raise click.UsageError("name a SOURCE, or a workshop file with --from")
    reporter = Reporter(json_logs, verbose)
    settings = Settings.from_env().with_overrides(
        image_prefix=image_prefix, os_image=os_image, ca_bundle=ca_bundle,
        strict_base=strict_base or None, relax=relax or None)
    if no_ca_bundle:
        settings = replace(settings, ca_bundle=None)
    if workshop_file is not None:
        _build_workshop(_load_workshop(workshop_file, reporter), settings, reporter, parallel,
                        appendix)
        return

    def stage() -> str:
        settings.check()
        parsed = parse_source(source, ref)
        # Unchanged inputs of a directory: its recorded image, before any heavy import. An
        # appendix is no input the record knows, so such a build is never looked up.
        if not push and image_name is None and not appendix.strip() \
                and (image := rebuilt(parsed, settings, reporter)):
            return image
        from .builder.pipeline import build as build_source

        return build_source(parsed, settings, reporter, push=push, image_name=image_name,
                            appendix=appendix).image

    image = run_stage(reporter, stage)
    if not json_logs:
        click.echo(image)


@main.command()
@click.option("--os-image", help="OS image to build on [env PANGEO_BINDER_OS_IMAGE].")
@click.option("--operator", is_flag=True,
              help="Build (and print) the Dask operator image on top of it.")
@click.option("--builder", "service", flag_value="builder",
              help="Build (and print) BinderHub's build image: `jupyter-repo2docker` "
              "that builds with pangeo-binder.")
@click.option("--hub", "service", flag_value="hub",
              help="Build (and print) the JupyterHub hub image with pangeo-binder's hooks.")
@click.option("--strict-base", is_flag=True, default=None,
              help="With --builder: its builds refuse pins that move Pangeo base packages "
              "[env PANGEO_BINDER_STRICT_BASE].")
@click.option("-v", "--verbose", is_flag=True, help="Show every line of docker build.")
def base(os_image: str | None, operator: bool, service: str | None,
         strict_base: bool | None, verbose: bool) -> None:
    """Build the pinned Pangeo environment image if missing; print its name."""
    from .builder.pipeline import build_base
    from .settings import Settings

    reporter = Reporter(False, verbose)
    image = run_stage(reporter, lambda: build_base(
        Settings.from_env().with_overrides(os_image=os_image, strict_base=strict_base),
        reporter, operator=operator, service=service))
    click.echo(image)


@main.command()
@click.argument("source", required=False)
@click.option("--ref", help="Branch, tag or commit of a git source.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the lock (default: stdout for a SOURCE, the "
              "environment's requirements.lock without one).")
@click.option("--environment",
              type=click.Choice(["pangeo-notebook", "pangeo-binder", "conda-installer"]),
              default="pangeo-notebook", show_default=True,
              help="Without SOURCE: which of environments/ to re-lock.")
@click.option("--upgrade", is_flag=True,
              help="Without SOURCE: move every package to its newest allowed version "
              "(by default the current lock's versions are kept where the specs allow).")
@click.option("--relax", is_flag=True, default=None,
              help="Lock SOURCE as `build --relax` would [env PANGEO_BINDER_RELAX].")
def lock(source: str | None, ref: str | None, output: Path | None, environment: str,
         upgrade: bool, relax: bool | None) -> None:
    """Lock SOURCE's requirements against the Pangeo base, or re-lock an environment.

    Commit the result as binder/pangeo-binder.lock to pin a repository's extras, or, for
    a repository with an environment.yml, as binder/conda-lock.yml.
    """
    from .builder.lock import lock_environment

    if source is None:
        result = run_stage(None, lambda: lock_environment(environment, output, upgrade))
        click.echo(f"locked {len(result.pins)} packages", err=True)  # type: ignore[attr-defined]
        return

    from .events import ignore
    from .settings import Settings
    from .spec import parse_source

    def stage() -> object:
        from .builder.fetch import checkout
        from .builder.kinds import Context, choose, detect
        from .builder.lock import BASE_PYTHON, load_base_lock
        from .builder.pipeline import resolver_sandbox
        from .engine import Engine

        settings = Settings.from_env().with_overrides(relax=relax or None)
        settings.check()
        with checkout(parse_source(source, ref), ignore) as files:
            config = detect(files, BASE_PYTHON, settings.relax)
            if config.dockerfile:
                raise PangeoBinderError(f"{config.dockerfile} builds as is: nothing to lock")
            sandbox = resolver_sandbox(Engine(settings.docker_cli), settings, ignore)
            ctx = Context(files, config, load_base_lock(), settings, sandbox, ignore)
            return choose(config, files, ignore, settings.relax).lock(ctx)

    repo_lock = run_stage(None, stage)
    if repo_lock is None:
        click.echo("pangeo-binder: error: the repository has no requirements to lock",
                   err=True)
        sys.exit(1)
    text = repo_lock.text  # type: ignore[attr-defined]
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)


@main.command()
@click.argument("source")
@click.option("--hub", "hub_url", required=True, help="The BinderHub's URL.")
@click.option("--ref", help="Branch, tag or commit to launch [default: HEAD].")
@click.option("--open", "open_path", help="File to open in JupyterLab, e.g. "
              "notebooks/intro.ipynb [default: JupyterLab's start page].")
@click.option("--format", "formats", multiple=True, default=["markdown", "rst", "html"],
              type=click.Choice(["markdown", "rst", "html"]), help="Badge format(s).")
@click.option("--check", is_flag=True, help="Also say whether the image of the ref is "
              "already built in the registry (exit 1 when not).")
@click.option("--image-prefix", help="The BinderHub's image_prefix, registry included, "
              "for --check [env PANGEO_BINDER_IMAGE_PREFIX].")
def badge(source: str, hub_url: str, ref: str | None, open_path: str | None,
          formats: tuple[str, ...], check: bool, image_prefix: str | None) -> None:
    """Print "launch binder" badges of SOURCE (gh:, gl:, gist:, a git URL or a record) on
    a BinderHub, opening JupyterLab (at a file with --open)."""
    from .hub.badge import BinderRepo, badges
    from .spec import parse_source

    def stage() -> tuple[str, tuple[str, bool] | None]:
        parsed = parse_source(source, ref)
        repo = BinderRepo.of(parsed)
        wanted = getattr(parsed, "ref", None) or "HEAD"  # a record has none
        urlpath = f"lab/tree/{open_path.lstrip('/')}" if open_path else "lab"
        built = None
        if check:
            prefix = image_prefix or os.environ.get("PANGEO_BINDER_IMAGE_PREFIX")
            if not prefix:
                raise PangeoBinderError("--check needs the hub's --image-prefix")
            built = repo.built_image(prefix, wanted)
        return repo.launch_url(hub_url, wanted, urlpath), built

    url, built = run_stage(None, stage)  # type: ignore[misc]
    texts = badges(url, hub_url)
    click.echo("\n\n".join(texts[name] for name in formats))
    if built is not None:
        image, present = built
        click.echo(f"built: {image}" if present else f"not built yet: {image}", err=True)
        sys.exit(0 if present else 1)


def _load_workshop(path: Path, reporter: Reporter | None = None):
    from .workshop.config import load_workshop

    return run_stage(reporter, lambda: load_workshop(path))


def _build_workshop(workshop, settings, reporter: Reporter, parallel: int,
                    appendix: str = "") -> list[str]:
    """Build and push a workshop's repositories; print a summary; exit 1 if any failed.
    Returns the images, repositories' first, then the workshop's own images."""
    from .workshop.prewarm import build_workshop

    built = run_stage(reporter, lambda: build_workshop(workshop, settings, reporter,
                                                       parallel, appendix))
    failed = [b for b in built if b.image is None]  # type: ignore[union-attr]
    for result in built:  # type: ignore[union-attr]
        state = "FAILED" if result.image is None else ("cached" if result.cached else "built")
        line = f"{state:>7}  {result.source}  {result.image or result.error}"
        if reporter.json_logs:
            reporter(Event(Phase.FAILED if result.image is None else Phase.BUILT,
                           line.strip(), image=result.image))
        else:
            click.echo(line, err=True)
    if failed:
        reporter.fail(f"error: {len(failed)} of {len(built)} repositories failed to build")
        sys.exit(1)
    images = [b.image for b in built] + list(workshop.images)  # type: ignore[union-attr]
    if not reporter.json_logs:
        for image in images:
            click.echo(image)
    return images


class _PrewarmGroup(click.Group):
    """`prewarm FILE` starts the pool; `prewarm status FILE`, `prewarm stop FILE`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


_cluster_options = [
    click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="Kubeconfig file [default: $KUBECONFIG, ~/.kube/config]."),
    click.option("--context", help="Kubeconfig context [default: current]."),
]


def _with_cluster(command):
    for option in reversed(_cluster_options):
        command = option(command)
    return command


@main.group(cls=_PrewarmGroup)
def prewarm() -> None:
    """Get a workshop ready: `prewarm FILE` builds and pushes its images, pulls them onto
    every session node and holds its seats; `prewarm status FILE`; `prewarm stop FILE`."""


@prewarm.command("start")
@click.argument("workshop_file", type=click.Path(dir_okay=False, path_type=Path))
@_with_cluster
@click.option("--parallel", type=click.IntRange(1, 8), default=2, show_default=True,
              help="Builds at a time.")
@click.option("--timeout", type=float, default=1800, show_default=True,
              help="Seconds to wait for every node to pull every image.")
def prewarm_start(workshop_file: Path, kubeconfig: Path | None, context: str | None,
                  parallel: int, timeout: float) -> None:
    """Build, push and pre-pull the workshop's images; hold its seats (idempotent)."""
    from .kube import connect
    from .settings import Settings
    from .workshop.prewarm import start_pool

    reporter = Reporter(False, False)
    workshop = _load_workshop(workshop_file)
    images = _build_workshop(workshop, Settings.from_env(), reporter, parallel)
    status = run_stage(reporter, lambda: start_pool(
        connect(kubeconfig, context), workshop, images, reporter, timeout))
    click.echo(status.summary(), err=True)  # type: ignore[attr-defined]


@prewarm.command("status")
@click.argument("workshop_file", type=click.Path(dir_okay=False, path_type=Path))
@_with_cluster
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def prewarm_status(workshop_file: Path, kubeconfig: Path | None, context: str | None,
                   as_json: bool) -> None:
    """Nodes that have every image / nodes, seats held / wanted (exit 1 when not ready)."""
    import json
    from dataclasses import asdict

    from .kube import connect
    from .workshop.prewarm import pool_status

    workshop = _load_workshop(workshop_file)
    status = run_stage(None, lambda: pool_status(connect(kubeconfig, context), workshop))
    ready = status.ready and status.seats_held == status.seats_wanted
    if as_json:
        values = asdict(status)
        values.update(until=status.until.isoformat() if status.until else None,
                      nodes_ready=status.nodes_ready, ready=ready,
                      expired=workshop.expired())
        click.echo(json.dumps(values))
    else:
        for node in status.nodes:
            click.echo(f"{node.node}: {node.pulled}/{node.total} images")
        click.echo(status.summary() + (" (past its end: prewarm stop)"
                                       if workshop.expired() else ""))
    sys.exit(0 if ready else 1)


@prewarm.command("stop")
@click.argument("workshop_file", type=click.Path(dir_okay=False, path_type=Path))
@_with_cluster
def prewarm_stop(workshop_file: Path, kubeconfig: Path | None, context: str | None) -> None:
    """Remove the workshop's pullers, seats and priority class; nothing else."""
    from .kube import connect
    from .workshop.prewarm import stop_pool

    reporter = Reporter(False, False)
    workshop = _load_workshop(workshop_file)
    if not run_stage(reporter, lambda: stop_pool(connect(kubeconfig, context), workshop,
                                                 reporter)):
        click.echo("nothing to remove", err=True)


def _kube_options(command):
    """Options naming the cluster and the user, shared by launch and stop."""
    options = [
        click.option("--kubernetes", "use_kubernetes", is_flag=True,
                     help="Run on Kubernetes instead of the local Docker engine."),
        *_cluster_options,
        click.option("--namespace", help="Namespace of the session [default: pangeo-USER, "
                     "one per user, which is what isolates users]."),
        click.option("--user", default=lambda: os.environ.get("USER") or "user",
                     show_default="$USER", help="Whose session this is."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command()
@click.argument("target")
@click.option("--ref", help="Branch, tag or commit when TARGET is a git source.")
@_kube_options
@click.option("--max-workers", type=int, default=4, show_default=True,
              help="Most Dask workers the session may have.")
@click.option("--worker-cores", default="1", show_default=True,
              help="Cores per worker (and scheduler): what each is guaranteed.")
@click.option("--worker-cores-limit", help="CPU limit of a worker (and scheduler), at least "
              "its cores [default: the session's cores, when more].")
@click.option("--worker-memory", default="2Gi", show_default=True, help="Memory per worker.")
@click.option("--session-cores", default="1", show_default=True, help="Cores of the session.")
@click.option("--session-memory", default="2Gi", show_default=True,
              help="Memory of the session.")
@click.option("--idle-timeout", type=int, default=1800, show_default=True,
              help="Seconds before an idle Dask cluster removes itself.")
@click.option("--timeout", type=float, default=300, show_default=True,
              help="Seconds to wait for JupyterLab.")
@click.option("--json-logs", is_flag=True, help="One JSON object per line.")
def launch(target: str, ref: str | None, use_kubernetes: bool, kubeconfig: Path | None,
           context: str | None, namespace: str | None, user: str, max_workers: int,
           worker_cores: str, worker_cores_limit: str | None, worker_memory: str,
           session_cores: str, session_memory: str, idle_timeout: int, timeout: float,
           json_logs: bool) -> None:
    """Run TARGET (an image, or a source to build first) as a JupyterLab session.

    Locally, prints the URL with its token. With --kubernetes, creates the user's
    session (least-privilege ServiceAccount, capped namespace, pod, service) where
    `KubeCluster()` gives the user a Dask cluster of their own, and says how to reach it.
    """
    from .builder.pipeline import build as build_source
    from .engine import Engine
    from .sessions.dask_policy import DaskCaps
    from .sessions.launch import KubeTarget, launch_kubernetes, launch_local
    from .settings import Settings
    from .spec import looks_like_source, parse_source

    reporter = Reporter(json_logs, False)

    def stage() -> object:
        settings = Settings.from_env()
        caps = DaskCaps(max_workers=max_workers, worker_cores=worker_cores,
                        worker_cores_limit=worker_cores_limit, worker_memory=worker_memory,
                        session_cores=session_cores, session_memory=session_memory,
                        idle_timeout=idle_timeout)
        image = target
        if looks_like_source(target):
            image = build_source(parse_source(target, ref), settings, reporter).image
        if use_kubernetes:
            session = launch_kubernetes(
                image, KubeTarget(user=user, namespace=namespace, kubeconfig=kubeconfig,
                                  context=context), caps, reporter, timeout=timeout)
            return session.how_to_reach
        return launch_local(image, Engine(settings.docker_cli), reporter, timeout).url

    result = run_stage(reporter, stage)
    if not json_logs:
        click.echo(result)


@main.command()
@click.argument("image", required=False)
@_kube_options
def stop(image: str | None, use_kubernetes: bool, kubeconfig: Path | None,
         context: str | None, namespace: str | None, user: str) -> None:
    """Stop a session: the local one running IMAGE, or with --kubernetes the user's
    session with its Dask clusters and RBAC objects."""
    from .engine import Engine
    from .sessions.launch import KubeTarget, stop_kubernetes, stop_local
    from .settings import Settings

    reporter = Reporter(False, False)
    if use_kubernetes:
        run_stage(reporter, lambda: stop_kubernetes(
            KubeTarget(user=user, namespace=namespace, kubeconfig=kubeconfig,
                       context=context), reporter))
        return
    if image is None:
        raise click.UsageError("name the IMAGE of the local session, or use --kubernetes")
    stopped = run_stage(None, lambda: stop_local(image, Engine(Settings.from_env().docker_cli)))
    click.echo("stopped" if stopped else f"no local session runs {image}", err=True)


@main.command("test")
@click.argument("source")
@click.argument("notebooks", nargs=-1)
@click.option("--ref", help="Branch, tag or commit when SOURCE is a git source.")
@click.option("--parallel", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Notebooks run at a time.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=1200,
              show_default=True, help="Seconds each notebook may take; then its kernel is "
              "stopped and it counts as timed out.")
@click.option("--cell-timeout", type=click.FloatRange(0, min_open=True),
              help="Seconds each cell may take [default: only the notebook's timeout].")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Notebooks not to run, by a glob of their path (repeatable).")
@click.option("--no-network", is_flag=True,
              help="Run the notebooks without network (local engine only).")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the results as JUnit XML to this file.")
@click.option("--markdown", "markdown_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Append a Markdown summary to this file (e.g. $GITHUB_STEP_SUMMARY).")
@click.option("--json-logs", is_flag=True, help="One JSON object per line.")
@_kube_options
@click.option("--max-workers", type=int, default=4, show_default=True,
              help="With --kubernetes: most Dask workers the notebooks may have.")
@click.option("--worker-cores", default="1", show_default=True, help="Cores per worker.")
@click.option("--worker-memory", default="2Gi", show_default=True, help="Memory per worker.")
@click.option("--session-cores", default="1", show_default=True,
              help="Cores of the pod that runs the notebooks.")
@click.option("--session-memory", default="2Gi", show_default=True,
              help="Memory of the pod that runs the notebooks.")
@click.option("-v", "--verbose", is_flag=True, help="Show the build's and the kernels' output.")
def test_command(source: str, notebooks: tuple[str, ...], ref: str | None, parallel: int,
                 timeout: float, cell_timeout: float | None, exclude: tuple[str, ...],
                 no_network: bool, junit_file: Path | None, markdown_file: Path | None,
                 json_logs: bool, use_kubernetes: bool, kubeconfig: Path | None,
                 context: str | None, namespace: str | None, user: str, max_workers: int,
                 worker_cores: str, worker_memory: str, session_cores: str,
                 session_memory: str, verbose: bool) -> None:
    """Run SOURCE's notebooks headless in its image and report each one.

    SOURCE is any source `build` takes (built, or found when built already) or an
    image. NOTEBOOKs (files or directories, relative to the repository;
    default: every notebook) run a few at a time with nbclient, locally or with
    --kubernetes as a Job with the user's Dask setup. Exits 1 when any notebook fails or
    times out.
    """
    from .checks.notebook_report import check_writable, write_reports
    from .checks.notebooks import NotebookOptions, check_notebooks
    from .settings import Settings

    if no_network and use_kubernetes:
        raise click.UsageError("--no-network runs on the local engine only")
    reporter = Reporter(json_logs, verbose)

    def stage() -> object:
        check_writable(junit_file, markdown_file)
        options = NotebookOptions(notebooks=notebooks, exclude=exclude, parallel=parallel,
                                  timeout=timeout, cell_timeout=cell_timeout,
                                  network=not no_network)
        run = None
        if use_kubernetes:
            from .checks.notebook_job import JobTarget, job_runner
            from .sessions.dask_policy import DaskCaps
            from .sessions.launch import KubeTarget

            run = job_runner(JobTarget(
                KubeTarget(user=user, namespace=namespace, kubeconfig=kubeconfig,
                           context=context),
                DaskCaps(max_workers=max_workers, worker_cores=worker_cores,
                         worker_memory=worker_memory, session_cores=session_cores,
                         session_memory=session_memory)))
        report = check_notebooks(source, ref, options, Settings.from_env(), reporter, run)
        write_reports(report, junit_file, markdown_file)
        return report

    report = run_stage(reporter, stage)
    _draw_notebook_report(report, reporter)
    if not report.passed:  # type: ignore[attr-defined]
        sys.exit(1)


def _draw_notebook_report(report, reporter: Reporter) -> None:
    """The results: the last JSON event, or a table on stdout (rich on a terminal, plain
    lines elsewhere) and the summary on stderr."""
    from .checks.notebook_report import plain_lines, rich_table

    if reporter.json_logs:
        reporter(Event(Phase.TESTED if report.passed else Phase.FAILED, report.summary,
                       image=report.image, data={"counts": report.counts}))
        return
    if sys.stdout.isatty():
        from rich.console import Console

        Console(highlight=False).print(rich_table(report))
    else:
        for line in plain_lines(report):
            click.echo(line)
    click.echo(report.summary, err=True)


@main.command()
@click.argument("image")
@click.option("--sbom", "sbom_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a CycloneDX SBOM (JSON) of what IMAGE holds to this file.")
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON object.")
def verify(image: str, sbom_file: Path | None, as_json: bool) -> None:
    """Check that IMAGE still holds exactly what its lock says.

    Lists every package added, removed, at another version, or whose files differ from
    their recorded sha256. Exits 0 when IMAGE matches its lock, 1 when it has drifted,
    2 when it cannot be verified (no such image, no lock in it, no Docker).
    """
    import json

    from .checks.sbom import check_writable, write_sbom
    from .checks.verify import inspect_image, plain_lines, rich_table
    from .engine import Engine
    from .settings import Settings

    def stage() -> object:
        check_writable(sbom_file)
        result = inspect_image(image, Engine(Settings.from_env().docker_cli))
        if sbom_file is not None:
            write_sbom(result, sbom_file)
        return result

    result = run_stage(Reporter(False, False), stage, error_code=2)
    if as_json:
        click.echo(json.dumps(result.to_json()))  # type: ignore[attr-defined]
    elif sys.stdout.isatty() and not result.matches:  # type: ignore[attr-defined]
        from rich.console import Console

        Console(highlight=False).print(rich_table(result))
    else:
        for line in plain_lines(result):  # type: ignore[arg-type]
            click.echo(line)
    if not as_json:
        click.echo(result.summary, err=True)  # type: ignore[attr-defined]
    sys.exit(0 if result.matches else 1)  # type: ignore[attr-defined]

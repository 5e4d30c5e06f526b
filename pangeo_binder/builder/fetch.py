"""Fetch a source at exactly one commit and describe its files.

A git source is resolved to a commit sha first (`git ls-remote`), then only that commit
is fetched (shallow) into a temporary directory that is removed afterwards. A local
directory is used in place; when it is part of a git checkout, its files are the ones git
would commit (ignored files stay out), uncommitted changes included. Either way a
checkout is identified by a hash of its files (names, executable bits, link targets,
contents), never by where it is: a clean directory and its git URL at the same commit
have the same identity, and an uncommitted change gives another. A private remote is
read with the credentials in GIT_CREDENTIAL_ENV, as BinderHub's build pods give them
(see `credentials`). A published record (a DOI, a record URL, a SWHID) is fetched by
repo2docker's content provider for it (`records`) into a temporary directory too, and
identified the same way, by its files; its revision is the record's version.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..credentials import git_args, redact
from ..errors import SourceError
from ..events import Emit, Event, Phase
from ..spec import GitSource, LocalSource, RecordSource, Source, without_credentials

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHORT_SHA = re.compile(r"^[0-9a-f]{4,39}$")
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}


@dataclass(frozen=True)
class Checkout:
    """The files of one version of a source, ready to be detected and copied."""

    path: Path
    files: tuple[str, ...]  # posix paths relative to `path`, sorted; never under .git
    tree_id: str  # identifies the content (never where it is): same id, same files
    revision: str | None  # commit sha ("-dirty": local changes), or a record's version
    source_url: str


def _git(*args: str, cwd: Path | None = None, what: str) -> str:
    import subprocess  # here: reading a directory outside git starts no process

    try:
        result = subprocess.run(
            ["git", *git_args(), *args], cwd=cwd, capture_output=True, text=True,
            env={**os.environ, **_GIT_ENV}, check=False,
        )
    except FileNotFoundError:
        raise SourceError("git is not installed; install git to build git sources") from None
    if result.returncode != 0:
        lines = [ln.strip() for ln in result.stderr.splitlines() if ln.strip()]
        fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:", "ERROR:"))]
        reason = (fatal or lines or [f"git exited with {result.returncode}"])[-1]
        raise SourceError(redact(f"{what}: {reason}"))
    return result.stdout


def resolve_ref(url: str, ref: str | None) -> str | None:
    """The commit sha `ref` names in the remote, or None when only a fetch can tell
    (an abbreviated sha)."""
    if ref is not None and _FULL_SHA.match(ref):
        return ref
    wanted = ref or "HEAD"
    out = _git("ls-remote", url, wanted, what=f"cannot read {url}")
    refs: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    candidates = (
        [wanted] if wanted == "HEAD" or wanted.startswith("refs/")
        else [f"refs/heads/{wanted}", f"refs/tags/{wanted}"]
    )
    for name in candidates:
        # An annotated tag's commit is listed as the peeled "^{}" entry.
        sha = refs.get(f"{name}^{{}}") or refs.get(name)
        if sha:
            return sha
    if ref is not None and _SHORT_SHA.match(ref):
        return None
    raise SourceError(f"ref {wanted!r} not found in {url}")


def _fetch_commit(url: str, ref: str | None, dest: Path) -> str:
    sha = resolve_ref(url, ref)
    _git("init", "--quiet", str(dest), what="cannot create a checkout")
    if sha is not None:
        _git("fetch", "--quiet", "--depth=1", "--no-tags", url, sha, cwd=dest,
             what=f"cannot fetch {sha[:12]} from {url}")
        target = "FETCH_HEAD"
    else:
        # An abbreviated sha: only the full history can tell which commit it is.
        _git("fetch", "--quiet", "--filter=blob:none", url,
             "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*",
             cwd=dest, what=f"cannot fetch {url}")
        try:
            target = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}",
                          cwd=dest, what="").strip()
        except SourceError:
            raise SourceError(f"ref {ref!r} not found in {url}") from None
    _git("checkout", "--quiet", "--detach", target, cwd=dest, what="cannot check out")
    return _git("rev-parse", "HEAD", cwd=dest, what="cannot read HEAD").strip()


def _content_id(root: Path, files: tuple[str, ...]) -> str:
    """A hash of paths, executable bits, link targets and contents."""
    digest = hashlib.sha256()
    for name in files:
        path = root / name
        if path.is_symlink():
            kind, data = "link", os.readlink(path).encode()
        elif not path.is_file():  # a FIFO or device: never read (it may block)
            kind, data = "special", b""
        else:
            kind = "exec" if os.access(path, os.X_OK) else "file"
            data = path.read_bytes()
        digest.update(f"{name}\0{kind}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return "sha256:" + digest.hexdigest()


def _git_files(root: Path, *flags: str) -> tuple[str, ...]:
    out = _git("ls-files", "-z", *flags, cwd=root, what=f"cannot list files of {root}")
    names = {n for n in out.split("\0") if n}
    # Tracked files deleted in the working tree, and submodules, are not shipped.
    return tuple(sorted(n for n in names if (root / n).is_symlink() or (root / n).is_file()))


def _walk_files(root: Path) -> tuple[str, ...]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        base = Path(dirpath)
        for name in filenames:
            found.append((base / name).relative_to(root).as_posix())
        for name in dirnames:  # symlinks to directories are copied as links
            if (base / name).is_symlink():
                found.append((base / name).relative_to(root).as_posix())
    return tuple(sorted(found))


def _git_says(*args: str, cwd: Path) -> str:
    """What a local git command prints; nothing when it fails (no work tree, no HEAD
    yet, no remote)."""
    import subprocess

    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=False).stdout.strip()


def _in_git_work_tree(path: Path) -> bool:
    # No .git above it (and no GIT_DIR naming one elsewhere): not one, without starting
    # git: a rebuild of a plain directory asks nothing else of the system.
    if "GIT_DIR" not in os.environ and not any(
            (parent / ".git").exists() for parent in (path, *path.parents)):
        return False
    return _git_says("rev-parse", "--is-inside-work-tree", cwd=path) == "true"


def _local_files(path: Path) -> tuple[tuple[str, ...], bool]:
    """A directory's files as a build ships them, and whether they are git's: in a git
    work tree the files git would commit (uncommitted changes included, ignored files
    left out), elsewhere all of them."""
    if _in_git_work_tree(path):
        return _git_files(path, "--cached", "--others", "--exclude-standard"), True
    return _walk_files(path), False


def local_tree_id(path: Path) -> str:
    """The tree id a checkout of the directory has, without the rest of the checkout
    (its commit and its remote, three git commands more): all a rebuild asks of it."""
    return _content_id(path, _local_files(path)[0])


def _local_checkout(path: Path) -> Checkout:
    files, inside_git = _local_files(path)
    revision = None
    source_url = path.as_uri()
    if inside_git:
        head = _git_says("rev-parse", "--verify", "--quiet", "HEAD", cwd=path)
        if head:
            dirty = _git("status", "--porcelain", "--", ".", cwd=path, what="git status")
            revision = head + ("-dirty" if dirty.strip() else "")
        remote = _git_says("config", "--get", "remote.origin.url", cwd=path)
        source_url = without_credentials(remote) if remote else source_url
    return Checkout(path=path, files=files, tree_id=_content_id(path, files),
                    revision=revision, source_url=source_url)


@contextmanager
def checkout(source: Source, emit: Emit) -> Iterator[Checkout]:
    """The source's files; a fetched copy is deleted when the block ends."""
    if isinstance(source, LocalSource):
        emit(Event(Phase.FETCHING, f"Using local directory {source.path}"))
        yield _local_checkout(source.path)
        return
    if isinstance(source, RecordSource):
        yield from _record_checkout(source, emit)
        return
    assert isinstance(source, GitSource)
    import tempfile  # here: a directory is used in place

    emit(Event(Phase.FETCHING, f"Fetching {source.display}"
                               + (f" at {source.ref}" if source.ref else "")))
    with tempfile.TemporaryDirectory(prefix="pangeo-binder-fetch-") as tmp:
        dest = Path(tmp) / "repo"
        sha = _fetch_commit(source.url, source.ref, dest)
        emit(Event(Phase.FETCHING, f"Fetched commit {sha}"))
        # The same identity as a local directory's: a clean checkout of this commit
        # anywhere has the same files, hence the same tree id and the same image tag.
        files = _git_files(dest)
        yield Checkout(path=dest, files=files, tree_id=_content_id(dest, files),
                       revision=sha, source_url=source.public_url)


def _record_checkout(source: RecordSource, emit: Emit) -> Iterator[Checkout]:
    import tempfile

    from .records import fetch_record

    emit(Event(Phase.FETCHING, f"Fetching record {source.display}"))
    with tempfile.TemporaryDirectory(prefix="pangeo-binder-fetch-") as tmp:
        dest = Path(tmp) / "repo"
        record = fetch_record(source, dest, emit)
        emit(Event(Phase.FETCHING, f"Fetched {source.display} version {record.revision}"))
        # Its files are its identity, as a directory's: the same record (or the same
        # files anywhere else) gets the same image tag.
        files = _walk_files(dest)
        yield Checkout(path=dest, files=files, tree_id=_content_id(dest, files),
                       revision=record.revision,
                       source_url=without_credentials(record.source_url))


def copy_files(checkout: Checkout, dest: Path, ignore: Sequence[str] = ()) -> None:
    """Copy the checkout's files (links as links) into `dest`, but those the `ignore`
    patterns (a .dockerignore's, read by docker-py's matcher, as repo2docker reads it)
    exclude: what a repository keeps out of its images (credentials, large data) never
    reaches the build context."""
    import shutil

    from docker.utils.build import PatternMatcher

    excluded = PatternMatcher(list(ignore)).matches if ignore else (lambda name: False)
    dest.mkdir(parents=True, exist_ok=True)
    for name in checkout.files:
        if excluded(name):
            continue
        source = checkout.path / name
        if not source.is_symlink() and not source.is_file():
            continue  # FIFOs and devices are not part of an image
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)

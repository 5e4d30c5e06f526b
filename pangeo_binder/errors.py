"""Errors a user can act on.

Every failure a user can cause or fix is one of these, with a message that says what is
wrong and what to do; the CLI prints it as one line and exits non-zero. Anything else
escaping a stage is a bug.
"""


class PangeoBinderError(Exception):
    """A failure with a message meant for the user."""


class SourceError(PangeoBinderError):
    """The source (path, URL, gh: shorthand or ref) is malformed or cannot be fetched."""


class BinderConfigError(PangeoBinderError):
    """A binder file is missing, unreadable, invalid or unsupported."""


class LockError(PangeoBinderError):
    """The repository's requirements cannot be resolved against the pinned base."""


class PinConflictError(LockError):
    """The repository asks for a version of a package the Pangeo base pins differently."""


class DockerError(PangeoBinderError):
    """The Docker engine is unreachable or refused an operation."""


class BuildError(PangeoBinderError):
    """`docker build` failed, or the built image failed its smoke test."""

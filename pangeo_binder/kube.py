"""Kubernetes access for the stages that launch and stop sessions (kr8s underneath).

Objects are built as plain dicts by the modules that make them (sessions.objects,
workshop.objects, checks.notebook_job), never as text; this module only connects,
creates-if-missing and deletes.
"""

from __future__ import annotations

import hashlib
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import waiting
from .dask_operator.contract import USER_ANNOTATION
from .errors import PangeoBinderError
from .waiting import Deadline

_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


class KubernetesError(PangeoBinderError):
    """The cluster is unreachable, or refused an operation."""


def dns_name(text: str, max_length: int = 40) -> str:
    """A DNS-1123 label made from `text`. Many texts give one label (`a.b`, `a_b`, `A.B`
    all give `a-b`), so never for user names: `user_slug` is one name per user."""
    name = _DNS_LABEL.sub("-", text.lower()).strip("-")[:max_length].strip("-")
    if not name:
        raise KubernetesError(f"{text!r} cannot be made into a Kubernetes name")
    return name


# KubeSpawner 7's `{safe_username}` is at most this long; with it, `pangeo-SLUG-session`
# (the Service, which must be a DNS-1035 label) fills 63 characters at most.
USER_SLUG_LENGTH = 48
_SAFE_SLUG = re.compile(r"[a-z]([a-z0-9-]*[a-z0-9])?")
_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")
_HASH_LENGTH = 8


def user_slug(user: str, max_length: int = USER_SLUG_LENGTH) -> str:
    """The user's name in object names and labels, one slug per user name.

    The scheme of KubeSpawner 7's safe slug, so that `launch --kubernetes` and the hub
    make the same namespace for a user: a name that is already a lower-case DNS label
    (starting with a letter, no `--`, at most `max_length`) is its own slug; any other
    becomes a readable part, `---` and a hash of the exact name. The two kinds cannot
    meet (only hashed slugs hold `---`), and hashed ones differ by their hash.
    """
    if "--" not in user and len(user) <= max_length and _SAFE_SLUG.fullmatch(user):
        return user
    digest = hashlib.sha256(user.encode()).hexdigest()[:_HASH_LENGTH]
    room = max_length - len("---") - _HASH_LENGTH
    if room < 1:
        raise ValueError(f"no room for a user slug in {max_length} characters")
    readable = _NOT_ALPHANUMERIC.sub("-", user.lower()).lstrip("-")[:room].rstrip("-")
    if readable and not readable[0].isalpha():  # a DNS-1035 label starts with a letter
        readable = "x-" + readable[:room - 2]
    return f"{readable or 'x'}---{digest}"


def made_for(metadata: Mapping[str, Any], user: str) -> bool:
    """Whether an object was made for exactly `user` (by its USER_ANNOTATION: slugs are
    for names, and an object without the annotation is nobody's to take over)."""
    return (metadata.get("annotations") or {}).get(USER_ANNOTATION) == user


@contextmanager
def kubernetes_errors(what: str) -> Iterator[None]:
    """Turn client and API errors into one line naming what was being done."""
    import httpx
    import kr8s

    try:
        yield
    except kr8s.ServerError as exc:
        status = getattr(exc, "status", None)
        reason = getattr(status, "message", None) or str(exc)
        raise KubernetesError(f"{what}: {reason}") from None
    except (httpx.HTTPError, OSError) as exc:
        raise KubernetesError(f"{what}: cannot reach the Kubernetes API ({exc})") from None


def connect(kubeconfig: Path | None = None, context: str | None = None):
    """An API client for the kubeconfig (default: $KUBECONFIG or ~/.kube/config)."""
    import kr8s

    # kr8s warns about every API server older than its tested range; the calls used
    # here are stable since Kubernetes 1.16.
    warnings.filterwarnings("ignore", message="Kubernetes version", category=UserWarning)
    with kubernetes_errors("cannot connect to Kubernetes"):
        try:
            api = kr8s.api(kubeconfig=str(kubeconfig) if kubeconfig else None, context=context)
            api.version()
        except (ValueError, KeyError, FileNotFoundError) as exc:
            raise KubernetesError(f"no usable kubeconfig: {exc}") from None
    return api


def ensure(api, manifest: Mapping[str, Any], *, wait_for_quota: float = 0,
           on_wait: Callable[[str], None] | None = None):
    """Create the object unless one of that name exists; return the live object.

    With `wait_for_quota` seconds, a creation refused for exceeding a ResourceQuota is
    retried meanwhile (pods of a session deleted a moment ago still count while they
    terminate), telling `on_wait` why."""
    import kr8s
    from kr8s.objects import object_from_spec

    obj = object_from_spec(dict(manifest), api=api)
    what = f"cannot create {manifest['kind']} {manifest['metadata']['name']}"
    deadline = Deadline(wait_for_quota)
    with kubernetes_errors(what):
        while not obj.exists():
            try:
                obj.create()
            except kr8s.ServerError as exc:
                reason = str(getattr(exc.status, "message", "") or exc)
                if "exceeded quota" not in reason or deadline.passed():
                    raise
                if on_wait:
                    on_wait(f"waiting for quota ({reason.split(': ', 1)[-1][:160]})")
                time.sleep(2)
        obj.refresh()
    return obj


def delete_if_present(obj, *, force: bool = False) -> bool:
    import kr8s

    try:
        # kr8s drops grace_period=0 as falsy; force=True is how it sends 0.
        obj.delete(force=force, propagation_policy="Foreground")
    except kr8s.NotFoundError:
        return False
    return True


def wait_for(condition: Callable[[], bool], timeout: float, message: str) -> None:
    """Poll `condition` each second; raise KubernetesError(message) after `timeout` s."""
    waiting.wait_for(condition, timeout, timed_out=lambda _: KubernetesError(message))

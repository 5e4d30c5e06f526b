"""Kubernetes access for the stages that launch and stop sessions (kr8s underneath).

Objects are rendered from templates/ (Jinja2 YAML) into plain dicts, so what is applied
is readable in one file; this module only connects, creates-if-missing and deletes.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from .errors import PangeoBinderError
from .resources import template

_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


class KubernetesError(PangeoBinderError):
    """The cluster is unreachable, or refused an operation."""


def dns_name(text: str, max_length: int = 40) -> str:
    """A DNS-1123 label made from `text` (user names become object names)."""
    name = _DNS_LABEL.sub("-", text.lower()).strip("-")[:max_length].strip("-")
    if not name:
        raise KubernetesError(f"{text!r} cannot be made into a Kubernetes name")
    return name


def render(name: str, **values: Any) -> list[dict[str, Any]]:
    """The Kubernetes objects of a YAML template, as dicts."""
    text = template(name).render(**values)
    return [doc for doc in YAML(typ="safe").load_all(text) if doc]


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
    deadline = time.monotonic() + wait_for_quota
    with kubernetes_errors(what):
        while not obj.exists():
            try:
                obj.create()
            except kr8s.ServerError as exc:
                reason = str(getattr(exc.status, "message", "") or exc)
                if "exceeded quota" not in reason or time.monotonic() > deadline:
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
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise KubernetesError(message)
        time.sleep(1)

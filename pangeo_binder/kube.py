"""Kubernetes access for the stages that launch and stop sessions (kr8s underneath).

Objects are rendered from templates/ (Jinja2 YAML) into plain dicts, so what is applied
is readable in one file; this module only connects, creates-if-missing and deletes.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jinja2
from ruamel.yaml import YAML

from .errors import PangeoBinderError
from .resources import templates_dir

_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


class KubernetesError(PangeoBinderError):
    """The cluster is unreachable, or refused an operation."""


def dns_name(text: str, max_length: int = 40) -> str:
    """A DNS-1123 label made from `text` (user names become object names)."""
    name = _DNS_LABEL.sub("-", text.lower()).strip("-")[:max_length].strip("-")
    if not name:
        raise KubernetesError(f"{text!r} cannot be made into a Kubernetes name")
    return name


def render(template: str, **values: Any) -> list[dict[str, Any]]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, autoescape=False,
    )
    text = env.get_template(template).render(**values)
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


def object_for(api, manifest: Mapping[str, Any]):
    from kr8s.objects import new_class, object_from_spec

    try:
        return object_from_spec(dict(manifest), api=api)
    except Exception:  # a custom resource kr8s has no class for
        kind, version = manifest["kind"], manifest["apiVersion"]
        cls = new_class(kind=kind, version=version, namespaced=True)
        return cls(dict(manifest), api=api)


def ensure(api, manifest: Mapping[str, Any]):
    """Create the object unless one of that name exists; return the live object."""
    obj = object_for(api, manifest)
    what = f"cannot create {manifest['kind']} {manifest['metadata']['name']}"
    with kubernetes_errors(what):
        if not obj.exists():
            obj.create()
        obj.refresh()
    return obj


def delete_if_present(obj, *, force: bool = False) -> bool:
    import kr8s

    try:
        obj.delete(grace_period=0 if force else None, propagation_policy="Foreground")
    except kr8s.NotFoundError:
        return False
    return True

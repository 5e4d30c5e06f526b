"""What a session may ask the Dask operator for: the rules its admission webhook enforces.

dask-kubernetes' operator runs whatever pod specs a DaskCluster, DaskWorkerGroup or
DaskJob holds, with its own cluster-wide rights. A session's ServiceAccount may create
those objects, so without these rules any user could run a privileged pod, mount the
node's disk or leave the caps behind. In a session namespace, the API server asks the
operator (pangeo_binder.dask_operator.policy) before any such object or pod exists:

- `restrict` sets the pod security the policy fixes (uid and gid 1000, non-root, no
  privilege escalation, no API token) and fills in what a spec may choose but leaves out
  (the runtime's seccomp profile, dropping ALL capabilities), so `KubeCluster()`'s plain
  specs pass, and gives every Dask container the session's TLS credentials
  (`tls_env`): scheduler and workers accept only connections that present them;
- `dask_violations` and `metadata_violations` name every rule an object breaks: an
  allow-list at least as strict as Pod Security `restricted` (pod_security), the
  session's images and caps, and the labels only pangeo-binder and the operator set.
  One is enough to refuse it.

Pure functions over plain dicts: no kopf, no API calls (the caller gathers the session's
images and worker counts), so every rule is unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .contract import (
    DASHBOARD_PREFIX_ENV,
    DASHBOARD_PREFIX_KEY,
    DASK_TLS_SECRET,
    SESSION_LABEL,
    SESSION_SELECTOR,
)
from .pod_security import (
    NB_UID,
    annotation_violations,
    containers,
    env_violations,
    pod_security_violations,
)

# Pod security whose value the policy fixes: `restrict` sets it, whatever a spec says.
POD_SECURITY = {"runAsUser": NB_UID, "runAsGroup": NB_UID, "fsGroup": NB_UID,
                "runAsNonRoot": True}
# Added to every pod by Kubernetes itself (DefaultTolerationSeconds).
DEFAULT_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
)

# The files of the session's Dask credentials (contract.DASK_TLS_SECRET).
_TLS_FILES = {"CA_FILE": "tls.crt", "CLIENT__CERT": "tls.crt", "CLIENT__KEY": "tls.key",
              "SCHEDULER__CERT": "tls.crt", "SCHEDULER__KEY": "tls.key",
              "WORKER__CERT": "tls.crt", "WORKER__KEY": "tls.key"}
# The scheduler's HTTP API, which the Dask operator uses to retire workers and check
# idleness (its RPC fallback does not speak TLS); the rest are distributed's defaults.
SCHEDULER_HTTP_ROUTES = [
    "distributed.http.scheduler.prometheus", "distributed.http.scheduler.info",
    "distributed.http.scheduler.json", "distributed.http.health", "distributed.http.proxy",
    "distributed.http.statics", "distributed.http.scheduler.api"]


# The scheduler's HTTP port (dashboard and API) answers only under a path that is the
# session's secret, kept in the same Secret: TLS client certificates guard the Dask port,
# but the dashboard is reached through jupyter-server-proxy, which presents none, and
# NetworkPolicy is paper where the network plugin ignores it. Every other path is 404,
# whoever asks. The session's dashboard link and the operator's calls carry the path.
_DASHBOARD_PREFIX_ARG = f"--dashboard-prefix=$({DASHBOARD_PREFIX_ENV})"  # the kubelet expands it


def tls_env() -> list[dict[str, Any]]:
    """The session's Dask credentials, as environment variables of a container: TLS
    required, the key and certificate from the namespace's Secret (distributed reads PEM
    text in these variables as the certificates themselves), and the dashboard's secret
    path."""
    def secret(key: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": DASK_TLS_SECRET, "key": key}}

    return [{"name": "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION", "value": "True"},
            *({"name": f"DASK_DISTRIBUTED__COMM__TLS__{name}", "valueFrom": secret(key)}
              for name, key in _TLS_FILES.items()),
            {"name": DASHBOARD_PREFIX_ENV, "valueFrom": secret(DASHBOARD_PREFIX_KEY)}]


@dataclass(frozen=True)
class Policy:
    """What the operator allows beyond the session's own image (its settings)."""

    image_prefixes: tuple[str, ...] = ()
    priority_classes: tuple[str, ...] = ()
    tolerations: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Session:
    """What the namespace's session may use: its images, its ServiceAccounts (a Dask
    pod may name one, or none) and its worker cap."""

    images: frozenset[str] = field(default_factory=frozenset)
    max_workers: int | None = None
    accounts: frozenset[str] = field(default_factory=frozenset)


def templates(kind: str, spec: Mapping[str, Any]) -> Iterator[tuple[str, dict, bool]]:
    """The templates in a Dask object's spec whose `metadata` the operator copies onto
    what it makes, with where they are and whether their `spec` is a pod spec."""
    def at(path: str, value: Any, pod: bool = True) -> Iterator[tuple[str, dict, bool]]:
        if isinstance(value, dict):
            yield path, value, pod

    if kind == "DaskCluster":
        yield from at("spec.scheduler", spec.get("scheduler"))
        yield from at("spec.worker", spec.get("worker"))
    elif kind == "DaskWorkerGroup":
        yield from at("spec.worker", spec.get("worker"))
    elif kind == "DaskJob":
        yield from at("spec.job", spec.get("job"))
        yield from at("spec.cluster", spec.get("cluster"), pod=False)
        cluster = (spec.get("cluster") or {}).get("spec") or {}
        for path, template, pod in templates("DaskCluster", cluster):
            yield f"spec.cluster.{path}", template, pod


def pod_specs(kind: str, spec: Mapping[str, Any]) -> Iterator[tuple[str, dict]]:
    """The pod specs inside a Dask object's spec, with where they are."""
    for path, template, pod in templates(kind, spec):
        if pod and isinstance(template.get("spec"), dict):
            yield f"{path}.spec", template["spec"]


def copied_metadata(kind: str, body: Mapping[str, Any]) -> Iterator[tuple[str, dict]]:
    """Every metadata of a Dask object that the operator copies onto the objects and
    pods it makes: the object's own, and its templates' (dask-kubernetes' controller
    merges the object's labels and annotations with each template's)."""
    yield "metadata", body.get("metadata") or {}
    for path, template, _ in templates(kind, body.get("spec") or {}):
        if isinstance(template.get("metadata"), dict):
            yield f"{path}.metadata", template["metadata"]


def _reserved(key: str, value: Any) -> bool:
    # The marks of session pods and pangeo-binder's own objects, and the labels by which
    # the operator finds a cluster's scheduler, workers and groups.
    return key.startswith(("pangeo-binder/", "dask.org/")) or (
        key == "app.kubernetes.io/part-of" and value == "pangeo-binder")


def metadata_violations(kind: str, body: Mapping[str, Any], old: Mapping[str, Any] | None,
                        operator: bool = False) -> list[str]:
    """Reserved labels and annotations, and security annotations, that a Dask object
    adds anywhere the operator copies metadata from. What an update leaves as it was
    had been admitted (or set by the operator): refusing it would only block cleanup.
    The operator itself labels the objects it makes with dask.org/*."""
    before = dict(copied_metadata(kind, old)) if old is not None else {}
    found = []
    for where, meta in copied_metadata(kind, body):
        for part in ("labels", "annotations"):
            was = (before.get(where) or {}).get(part) or {}
            added = {key: value for key, value in (meta.get(part) or {}).items()
                     if key not in was or was[key] != value}
            for key, value in added.items():
                if _reserved(key, value) and not (
                        operator and where == "metadata" and key.startswith("dask.org/")):
                    found.append(f"{where}.{part}[{key}]: reserved for pangeo-binder and "
                                 "the Dask operator")
            if part == "annotations":
                found += annotation_violations(added, where)
    return found


def _without_dashboard(args: list[str]) -> list[str]:
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--dashboard-address":
            skip = True  # and its value
        elif arg not in ("--dashboard", "--no-dashboard") and \
                not arg.startswith("--dashboard-address="):
            kept.append(arg)
    return [*kept, "--no-dashboard"]


def operator_env(scheduler: bool = True) -> list[dict[str, Any]]:
    """The Dask settings the operator gives a Dask container (`tls_env`, and the
    scheduler's HTTP routes); the only values of those settings a spec may hold."""
    ours = tls_env()
    if scheduler:
        ours.append({"name": "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES",
                     "value": repr(SCHEDULER_HTTP_ROUTES)})
    return ours


def restrict(pod: dict, scheduler: bool = False, worker: bool = False) -> None:
    """Set the restricted security settings whose value the policy fixes (overwriting
    what a spec says), fill in the others a spec leaves out (the runtime's seccomp
    profile, dropping ALL capabilities), and set the session's TLS configuration
    (replacing any of the same names), in place. Anything else a spec says is for the
    validator to refuse.

    Dask pods get no ServiceAccount token: the operator, not its schedulers, workers or
    job runners, talks to the Kubernetes API, and a token there would hand its rights to
    every task the workers run.

    A worker's own dashboard is turned off: it is plain HTTP without authentication,
    and no session can reach it (jupyter-server-proxy lets a session reach only its
    namespace's Services; the scheduler's dashboard shows the workers). Without it a
    worker starts sooner, without Bokeh."""
    security = pod["securityContext"] = pod.get("securityContext") or {}
    security.update(POD_SECURITY)
    security.setdefault("seccompProfile", {"type": "RuntimeDefault"})
    pod["automountServiceAccountToken"] = False
    ours = operator_env(scheduler)
    names = {entry["name"] for entry in ours}
    for _, container in containers(pod):
        security = container["securityContext"] = container.get("securityContext") or {}
        security["allowPrivilegeEscalation"] = False
        for key in ("runAsUser", "runAsGroup", "runAsNonRoot"):
            if key in security:
                security[key] = POD_SECURITY[key]
        capabilities = security["capabilities"] = security.get("capabilities") or {}
        drop = capabilities.get("drop") or []
        if "ALL" not in drop:
            capabilities["drop"] = [*drop, "ALL"]
        env = [e for e in container.get("env") or [] if e.get("name") not in names]
        container["env"] = env + ours
        args = container.get("args") or []
        if worker and "--dashboard" in args:
            container["args"] = _without_dashboard(args)
        if scheduler:
            _serve_dashboard_under_prefix(container)


def _serve_dashboard_under_prefix(container: dict) -> None:
    """The scheduler serves HTTP under the session's secret path (whatever prefix a spec
    named), and its health probes, which cannot know that path, open the port instead."""
    args = container.get("args") or []
    kept = [arg for index, arg in enumerate(args)
            if not arg.startswith("--dashboard-prefix")
            and not (index and args[index - 1] == "--dashboard-prefix")]
    container["args"] = [*kept, _DASHBOARD_PREFIX_ARG]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if (get := (container.get(probe) or {}).get("httpGet")) is not None:
            container[probe] = {**{k: v for k, v in container[probe].items()
                                   if k != "httpGet"},
                                "tcpSocket": {"port": get.get("port", 8787)}}


def pod_violations(pod: Mapping[str, Any], where: str, session: Session, policy: Policy,
                   dask: bool = True, images: bool = True) -> list[str]:
    """The rules `pod` (a pod spec at `where`) breaks: Pod Security `restricted` and
    more (pod_security), the session's images (unless `images` is false), and for a Dask
    pod (not a session's own) no API token and only the operator's Dask settings."""
    found = pod_security_violations(pod, where)
    if pod.get("nodeName"):
        found.append(f"{where}.nodeName: choosing a node is not allowed")
    priority = pod.get("priorityClassName")
    if priority and priority not in policy.priority_classes:
        found.append(f"{where}.priorityClassName: priority class {priority!r} is not "
                     "allowed")
    allowed = [*DEFAULT_TOLERATIONS, *policy.tolerations]
    for toleration in pod.get("tolerations") or []:
        if not any(_same_toleration(toleration, known) for known in allowed):
            found.append(f"{where}.tolerations: toleration {dict(toleration)} is not allowed")
    if dask:
        if pod.get("automountServiceAccountToken") is not False:
            found.append(f"{where}.automountServiceAccountToken: must be false")
        for key in ("serviceAccountName", "serviceAccount"):
            if pod.get(key) not in (None, "", "default", *session.accounts):
                found.append(f"{where}.{key}: only the session's ServiceAccount")
    for container_where, container in containers(pod):
        place = f"{where}.{container_where}"
        image = container.get("image", "")
        if images and image not in session.images and \
                not any(image.startswith(prefix) for prefix in policy.image_prefixes):
            found.append(f"{place}: image {image!r} is not the session's image")
        if dask:
            found += env_violations(container, place, operator_env())
    return found


def _same_toleration(toleration: Mapping[str, Any], known: Mapping[str, Any]) -> bool:
    keys = ("key", "operator", "value", "effect")
    return all(toleration.get(k) == known.get(k) for k in keys)


def service_violations(service: Mapping[str, Any], where: str) -> list[str]:
    """Scheduler services stay inside the cluster: ClusterIP, no external addresses."""
    found = []
    kind = service.get("type", "ClusterIP")
    if kind != "ClusterIP":
        found.append(f"{where}.type: {kind} services are not allowed (ClusterIP only)")
    if service.get("externalIPs"):
        found.append(f"{where}.externalIPs: external addresses are not allowed")
    return found


def dask_violations(kind: str, spec: Mapping[str, Any], session: Session,
                    policy: Policy, unchanged: bool = False) -> list[str]:
    """The rules a Dask object (of `kind`, with `spec`) breaks. With `unchanged` (an
    update that leaves the spec as it was admitted), the rules that depend on the
    session's state, which may have changed since (its images, its cap), are not
    applied: a cluster made before the session restarted with another image must still
    be scaled down, released by the operator's finalizer and deleted."""
    found = []
    for where, pod in pod_specs(kind, spec):
        found += pod_violations(pod, where, session, policy, images=not unchanged)
    cluster = (spec if kind == "DaskCluster" else
               (spec.get("cluster") or {}).get("spec") or {} if kind == "DaskJob" else None)
    if cluster is not None:
        where = "spec.scheduler.service" if kind == "DaskCluster" else \
            "spec.cluster.spec.scheduler.service"
        found += service_violations((cluster.get("scheduler") or {}).get("service") or {},
                                    where)
    if kind == "DaskAutoscaler" and session.max_workers is not None and not unchanged:
        maximum = int(spec.get("maximum") or 0)
        if maximum > session.max_workers:
            found.append(f"spec.maximum: {maximum} workers is more than this session's "
                         f"cap of {session.max_workers}")
    return found


def worker_counts(clusters: Sequence[Mapping[str, Any]],
                  groups: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Workers asked for in a namespace, by object ("DaskWorkerGroup/NAME",
    "DaskCluster/NAME"): every worker group, plus the default group of a cluster whose
    group the operator has not made yet (its replicas are still the cluster's)."""
    counts = {}
    group_names = {g["metadata"]["name"] for g in groups}
    for group in groups:
        counts[f"DaskWorkerGroup/{group['metadata']['name']}"] = _replicas(group["spec"])
    for cluster in clusters:
        name = cluster["metadata"]["name"]
        if f"{name}-default" not in group_names:
            counts[f"DaskCluster/{name}"] = _replicas(cluster["spec"])
    return counts


def _replicas(spec: Mapping[str, Any]) -> int:
    return int((spec.get("worker") or {}).get("replicas") or 0)


def cap_violation(kind: str, name: str, spec: Mapping[str, Any], counts: Mapping[str, int],
                  session: Session) -> str | None:
    """Whether the namespace would ask for more workers than its cap, counting all of its
    clusters and worker groups with this object's new spec."""
    if session.max_workers is None or kind not in ("DaskCluster", "DaskWorkerGroup"):
        return None
    counts = dict(counts)
    if kind == "DaskCluster":
        if f"DaskWorkerGroup/{name}-default" in counts:
            # The operator copies a cluster's replicas into its default group.
            counts[f"DaskWorkerGroup/{name}-default"] = _replicas(spec)
        else:
            counts[f"DaskCluster/{name}"] = _replicas(spec)
    else:
        if name == f"{spec.get('cluster')}-default":
            # The operator making a cluster's default group: counted once, as the group.
            counts.pop(f"DaskCluster/{spec.get('cluster')}", None)
        counts[f"DaskWorkerGroup/{name}"] = _replicas(spec)
    total = sum(counts.values())
    if total > session.max_workers:
        return (f"spec.worker.replicas: {total} workers in all of this session's Dask "
                f"clusters is more than its cap of {session.max_workers}")
    return None


def object_violations(kind: str, body: Mapping[str, Any], old: Mapping[str, Any] | None,
                      session: Session, policy: Policy, operator: bool = False,
                      counts: Mapping[str, int] | None = None) -> list[str]:
    """Every rule a Dask object breaks when it is made (`old` None) or changed: any
    update, deleting or not, its spec changed or not (a metadata-only patch, or a patch
    of an object kept alive by a finalizer, is an update like any other). `counts` are
    the namespace's workers (`worker_counts`) when `kind` has workers of its own."""
    spec = body.get("spec") or {}
    unchanged = old is not None and (old.get("spec") or {}) == spec
    found = metadata_violations(kind, body, old, operator)
    found += dask_violations(kind, spec, session, policy, unchanged=unchanged)
    if counts is not None and not unchanged and (
            cap := cap_violation(kind, body["metadata"]["name"], spec, counts, session)):
        found.append(cap)
    return found


def scale_violations(name: str, replicas: int, old_replicas: int | None,
                     groups: Sequence[Mapping[str, Any]], counts: Mapping[str, int],
                     session: Session) -> list[str]:
    """daskworkergroups/NAME/scale (an autoscaling/v1 Scale of spec.worker.replicas) is
    counted against the cap exactly as the same change of the worker group itself."""
    if replicas == old_replicas:
        return []
    group = next((g for g in groups if g["metadata"]["name"] == name), {})
    spec = dict(group.get("spec") or {})
    spec["worker"] = {**(spec.get("worker") or {}), "replicas": replicas}
    cap = cap_violation("DaskWorkerGroup", name, spec, counts, session)
    return [cap] if cap else []


DASK_LABEL_PREFIX = "dask.org/"


def session_selector() -> str:
    """The label selector of a namespace's session pods: never a Dask pod (every pod the
    Dask operator makes carries dask.org/cluster-name), whatever labels it was given."""
    return ",".join([*(f"{k}={v}" for k, v in SESSION_SELECTOR.items()),
                     f"!{DASK_LABEL_PREFIX}cluster-name"])


def pod_admission_violations(body: Mapping[str, Any], old: Mapping[str, Any] | None,
                             session: Session, policy: Policy,
                             made_by_operator: bool) -> list[str]:
    """Every rule a pod in a session namespace breaks when it is made (`old` None) or
    changed. Only a session pod (its launcher's, not anything the Dask operator or a
    controller makes from a Dask object) carries the session label: the operator makes
    such a pod the owner of the session's clusters and ends them with it. A session pod
    runs its own image and may hold the session's API token (KubeCluster() needs it);
    every other pod is a Dask pod."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    found = []
    if SESSION_LABEL in labels and (made_by_operator or any(
            key.startswith(DASK_LABEL_PREFIX) for key in labels)):
        found.append(f"metadata.labels[{SESSION_LABEL}]: only session pods carry it, not "
                     "Dask pods")
    if old is not None:
        # Only its metadata can change on a pod that exists: it cannot become a session
        # pod later.
        was = (old.get("metadata") or {}).get("labels") or {}
        if SESSION_LABEL in labels and labels[SESSION_LABEL] != was.get(SESSION_LABEL):
            found.append(f"metadata.labels[{SESSION_LABEL}]: a pod is a session pod from "
                         "the start or never")
        return found
    found += annotation_violations((body.get("metadata") or {}).get("annotations") or {},
                                   "metadata")
    pod = body.get("spec") or {}
    if SESSION_LABEL in labels and not found:
        own = Session(images=frozenset(c.get("image", "") for _, c in containers(pod)))
        return pod_violations(pod, "spec", own, policy, dask=False)
    return found + pod_violations(pod, "spec", session, policy)

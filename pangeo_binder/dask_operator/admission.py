"""What a session may ask the Dask operator for: the rules its admission webhook enforces.

dask-kubernetes' operator runs whatever pod specs a DaskCluster, DaskWorkerGroup or
DaskJob holds, with its own cluster-wide rights. A session's ServiceAccount may create
those objects, so without these rules any user could run a privileged pod, mount the
node's disk or leave the caps behind. In a session namespace, the API server asks the
operator (pangeo_binder.dask_operator.policy) before any such object or pod exists:

- `restrict` fills in the restricted pod security (uid 1000, non-root, no privilege
  escalation, no capabilities, the runtime's seccomp profile) where a spec says nothing,
  so `KubeCluster()`'s plain specs pass, and gives every Dask container the session's
  TLS credentials (`tls_env`): scheduler and workers accept only connections that
  present them;
- `violations` names every rule a spec breaks; one is enough to refuse it.

Pure functions over plain dicts: no kopf, no API calls (the caller gathers the session's
images and worker counts), so every rule is unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NB_UID = 1000
POD_SECURITY = {"runAsUser": NB_UID, "runAsGroup": NB_UID, "fsGroup": NB_UID,
                "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
# Added to every pod by Kubernetes itself (DefaultTolerationSeconds).
DEFAULT_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
)
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

# Every session namespace holds its Dask clusters' credentials in this Secret: one key
# and self-signed certificate, made for that session alone, which is also the only CA its
# schedulers and workers trust (pangeo_binder.sessions.dask_tls makes it).
DASK_TLS_SECRET = "pangeo-binder-dask-tls"
_TLS_FILES = {"CA_FILE": "tls.crt", "CLIENT__CERT": "tls.crt", "CLIENT__KEY": "tls.key",
              "SCHEDULER__CERT": "tls.crt", "SCHEDULER__KEY": "tls.key",
              "WORKER__CERT": "tls.crt", "WORKER__KEY": "tls.key"}
# The scheduler's HTTP API, which the Dask operator uses to retire workers and check
# idleness (its RPC fallback does not speak TLS); the rest are distributed's defaults.
SCHEDULER_HTTP_ROUTES = [
    "distributed.http.scheduler.prometheus", "distributed.http.scheduler.info",
    "distributed.http.scheduler.json", "distributed.http.health", "distributed.http.proxy",
    "distributed.http.statics", "distributed.http.scheduler.api"]


def tls_env() -> list[dict[str, Any]]:
    """Dask's TLS configuration, as environment variables of a container: encryption
    required, the credentials from the namespace's Secret (distributed reads PEM text in
    these variables as the certificates themselves)."""
    return [{"name": "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION", "value": "True"}] + [
        {"name": f"DASK_DISTRIBUTED__COMM__TLS__{name}",
         "valueFrom": {"secretKeyRef": {"name": DASK_TLS_SECRET, "key": key}}}
        for name, key in _TLS_FILES.items()]


@dataclass(frozen=True)
class Policy:
    """What the operator allows beyond the session's own image (its settings)."""

    image_prefixes: tuple[str, ...] = ()
    priority_classes: tuple[str, ...] = ()
    tolerations: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Session:
    """What the namespace's session may use: its images and its worker cap."""

    images: frozenset[str] = field(default_factory=frozenset)
    max_workers: int | None = None


def pod_specs(kind: str, spec: Mapping[str, Any]) -> Iterator[tuple[str, dict]]:
    """The pod specs inside a Dask object's spec, with where they are."""
    def at(path: str, value: Any) -> Iterator[tuple[str, dict]]:
        if isinstance(value, dict):
            yield path, value

    if kind == "DaskCluster":
        yield from at("spec.scheduler.spec", (spec.get("scheduler") or {}).get("spec"))
        yield from at("spec.worker.spec", (spec.get("worker") or {}).get("spec"))
    elif kind == "DaskWorkerGroup":
        yield from at("spec.worker.spec", (spec.get("worker") or {}).get("spec"))
    elif kind == "DaskJob":
        yield from at("spec.job.spec", (spec.get("job") or {}).get("spec"))
        cluster = (spec.get("cluster") or {}).get("spec") or {}
        for path, pod in pod_specs("DaskCluster", cluster):
            yield f"spec.cluster.{path}", pod


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


def restrict(pod: dict, scheduler: bool = False, worker: bool = False) -> None:
    """Fill in the restricted security settings a pod spec leaves out, and set the
    session's TLS configuration (replacing any of the same names), in place.

    A worker's own dashboard is turned off: it is plain HTTP without authentication,
    and no session can reach it (jupyter-server-proxy lets a session reach only its
    namespace's Services; the scheduler's dashboard shows the workers). Without it a
    worker starts sooner, without Bokeh."""
    security = pod.setdefault("securityContext", {})
    for key, value in POD_SECURITY.items():
        security.setdefault(key, value)
    ours = tls_env()
    if scheduler:
        ours.append({"name": "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES",
                     "value": repr(SCHEDULER_HTTP_ROUTES)})
    names = {entry["name"] for entry in ours}
    for name in _CONTAINER_LISTS:
        for container in pod.get(name) or []:
            security = container.setdefault("securityContext", {})
            for key, value in CONTAINER_SECURITY.items():
                security.setdefault(key, value)
            env = [e for e in container.get("env") or [] if e.get("name") not in names]
            container["env"] = env + ours
            args = container.get("args") or []
            if worker and "--dashboard" in args:
                container["args"] = _without_dashboard(args)


def _containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name in _CONTAINER_LISTS:
        for index, container in enumerate(pod.get(name) or []):
            yield f"{name}[{index}]", container


def pod_violations(pod: Mapping[str, Any], where: str, session: Session,
                   policy: Policy) -> list[str]:
    """The rules `pod` (a pod spec at `where`) breaks."""
    found = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            found.append(f"{where}.{key}: host namespaces are not allowed")
    if pod.get("nodeName"):
        found.append(f"{where}.nodeName: choosing a node is not allowed")
    for volume in pod.get("volumes") or []:
        if "hostPath" in volume:
            found.append(f"{where}.volumes[{volume.get('name')}]: hostPath volumes are "
                         "not allowed")
    priority = pod.get("priorityClassName")
    if priority and priority not in policy.priority_classes:
        found.append(f"{where}.priorityClassName: priority class {priority!r} is not "
                     "allowed")
    allowed = [*DEFAULT_TOLERATIONS, *policy.tolerations]
    for toleration in pod.get("tolerations") or []:
        if not any(_same_toleration(toleration, known) for known in allowed):
            found.append(f"{where}.tolerations: toleration {dict(toleration)} is not allowed")
    pod_security = pod.get("securityContext") or {}
    for container_where, container in _containers(pod):
        place = f"{where}.{container_where}"
        image = container.get("image", "")
        if image not in session.images and not any(image.startswith(prefix)
                                                   for prefix in policy.image_prefixes):
            found.append(f"{place}: image {image!r} is not the session's image")
        security = container.get("securityContext") or {}
        if security.get("privileged"):
            found.append(f"{place}: privileged containers are not allowed")
        if security.get("allowPrivilegeEscalation", True) is not False:
            found.append(f"{place}: allowPrivilegeEscalation must be false")
        capabilities = security.get("capabilities") or {}
        if capabilities.get("add"):
            found.append(f"{place}: adding capabilities is not allowed")
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{place}: capabilities must drop ALL")
        user = security.get("runAsUser", pod_security.get("runAsUser"))
        if user != NB_UID:
            found.append(f"{place}: must run as uid {NB_UID}, not {user}")
        if not security.get("runAsNonRoot", pod_security.get("runAsNonRoot")):
            found.append(f"{place}: runAsNonRoot must be true")
        if any(port.get("hostPort") for port in container.get("ports") or []):
            found.append(f"{place}: host ports are not allowed")
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
                    policy: Policy) -> list[str]:
    """The rules a Dask object (of `kind`, with `spec`) breaks."""
    found = []
    for where, pod in pod_specs(kind, spec):
        found += pod_violations(pod, where, session, policy)
    cluster = (spec if kind == "DaskCluster" else
               (spec.get("cluster") or {}).get("spec") or {} if kind == "DaskJob" else None)
    if cluster is not None:
        where = "spec.scheduler.service" if kind == "DaskCluster" else \
            "spec.cluster.spec.scheduler.service"
        found += service_violations((cluster.get("scheduler") or {}).get("service") or {},
                                    where)
    if kind == "DaskAutoscaler" and session.max_workers is not None:
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

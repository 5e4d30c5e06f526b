"""`launch --kubernetes` and `stop --kubernetes`: run an image as a user's JupyterLab
session on Kubernetes (the local engine's sessions: pangeo_binder.sessions.local).

Each user gets a namespace with a least-privilege ServiceAccount, caps
(ResourceQuota + LimitRange), a token Secret, the session Pod and its Service; inside it
`KubeCluster()` makes a Dask cluster in that namespace, owned by the session pod, so it
goes when the session goes (see deploy/dask-operator/ and dask_operator.policy).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from ..dask_operator.admission import tls_env
from ..dask_operator.contract import (
    DASK_TLS_SECRET,
    HUB_ACCOUNT_ANNOTATION,
    HUB_BINDING,
    OPERATOR_BINDING,
    USER_ANNOTATION,
    USER_LABEL,
)
from ..events import Emit, Event, Phase
from ..kube import (
    KubernetesError,
    connect,
    delete_if_present,
    ensure,
    kubernetes_errors,
    made_for,
    user_slug,
    wait_for,
)
from ..waiting import Deadline, Waiting, wait_until
from .dask_policy import DaskCaps, session_dask_env
from .dask_tls import ensure_credentials
from .objects import (
    KubeTarget,
    SessionNames,
    access_objects,
    credentials_labels,
    session_namespace,
    session_objects,
)

# Container states that will not get better by waiting.
_HOPELESS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CrashLoopBackOff",
             "CreateContainerConfigError", "CreateContainerError", "ErrImageNeverPull"}


def mark_owner(manifests: list[dict], user: str) -> list[dict]:
    """The manifests with the user's exact name annotated: what `made_for` checks before
    an object is reused or deleted (labels hold only the slug)."""
    for manifest in manifests:
        manifest["metadata"].setdefault("annotations", {})[USER_ANNOTATION] = user
    return manifests


def check_owner(obj, target: KubeTarget) -> None:
    """Refuse an object that was made for another user (or by a pangeo-binder that did
    not yet mark its objects): its token, account or pod are not this user's to take."""
    if not made_for(obj.metadata, target.user):
        raise KubernetesError(
            f"{obj.kind} {obj.name} in namespace {obj.namespace} was not made for "
            f"{target.user}; nothing of it is used or removed (ask an administrator)")


@dataclass(frozen=True)
class KubeSession:
    namespace: str
    pod: str
    service: str
    image: str
    token: str
    reused: bool  # True when the session was already running

    @property
    def how_to_reach(self) -> str:
        return (f"kubectl -n {self.namespace} port-forward service/{self.service} 8888:80, "
                f"then open http://127.0.0.1:8888/lab?token={self.token}")


def session_manifests(image: str, target: KubeTarget, caps: DaskCaps,
                      token: str) -> list[dict]:
    names = SessionNames.of(target)
    return mark_owner(session_objects(
        names, user_slug(target.user), image, caps, token,
        dask_env=session_dask_env(image, names.namespace, caps), tls_env=tls_env()),
        target.user)


def _ensure_namespace(api, names: SessionNames, target: KubeTarget, caps: DaskCaps,
                      hub_account: str | None = None) -> None:
    """The user's namespace, marked as a session namespace with its caps
    (`session_namespace`), and its Dask credentials."""
    from kr8s.objects import Namespace

    slug = user_slug(target.user)
    wanted = session_namespace(names.namespace, target.user, slug, caps, hub_account)
    labels, annotations = wanted["metadata"]["labels"], wanted["metadata"]["annotations"]
    namespace = Namespace(wanted, api=api)
    with kubernetes_errors(f"cannot prepare namespace {names.namespace}"):
        _wait_while_terminating(namespace)
        if not namespace.exists():
            namespace.create()
        else:
            namespace.refresh()
            owner = namespace.annotations.get(USER_ANNOTATION)
            # A namespace without an owner (made by hand, or before owners were marked)
            # is claimed; one with an owner keeps it.
            if owner is not None:
                if owner != target.user and names.own_namespace(target):
                    raise KubernetesError(
                        f"namespace {names.namespace} belongs to another user")
                # (A shared namespace named on the command line keeps its first owner.)
                labels = {k: v for k, v in labels.items() if k != USER_LABEL}
                annotations = {k: v for k, v in annotations.items() if k != USER_ANNOTATION}
            # A hub may not patch namespaces: it only ever finds them as it made them.
            if any(namespace.labels.get(k) != v for k, v in labels.items()) or any(
                    namespace.annotations.get(k) != v for k, v in annotations.items()):
                namespace.patch({"metadata": {"labels": labels, "annotations": annotations}})
    if hub_account:
        _wait_for_hub_rights(api, names.namespace)
    ensure_credentials(api, names.namespace, credentials_labels(slug))


def _wait_while_terminating(namespace, timeout: float = 180) -> None:
    """A namespace of an earlier session may still be on its way out (its pods
    terminating): a new one of that name can be made only once it is gone."""

    def settled() -> bool:
        if not namespace.exists():
            return True
        namespace.refresh()
        return not namespace.metadata.get("deletionTimestamp")

    wait_for(settled, timeout, f"namespace {namespace.name} of an earlier session is "
                               f"still being deleted after {timeout:.0f}s")


def _wait_for_hub_rights(api, namespace: str, timeout: float = 60) -> None:
    """Until the hub-rights process has bound the hub's session rights in `namespace` (the
    hub can read that RoleBinding once it exists, and only then)."""
    import kr8s
    from kr8s.objects import RoleBinding

    binding = RoleBinding(HUB_BINDING, namespace=namespace, api=api)

    def bound() -> bool:
        try:
            return binding.exists()
        except kr8s.ServerError:  # 403 until the binding exists
            return False

    wait_for(bound, timeout, f"the hub was not given its rights in {namespace} within "
                             f"{timeout:.0f}s; is the Dask operator's hub-rights "
                             f"Deployment running?")


def prepare_user_access(api, target: KubeTarget, caps: DaskCaps,
                        hub_account: str | None = None) -> SessionNames:
    """The user's namespace with its least-privilege ServiceAccount, Role, RoleBinding
    and caps: everything around the session pod. `launch --kubernetes` adds the pod;
    the JupyterHub hooks call this (with their `hub_account`) and let KubeSpawner make
    it."""
    names = SessionNames.of(target)
    _ensure_namespace(api, names, target, caps, hub_account)
    for manifest in mark_owner(access_objects(names, user_slug(target.user), caps),
                               target.user):
        check_owner(ensure(api, manifest), target)  # the account the session runs as
    return names


def delete_dask_clusters(api, namespace: str) -> int:
    """Delete every DaskCluster in `namespace` (the operator removes their pods); return
    how many there were."""
    with kubernetes_errors(f"cannot remove the Dask clusters in {namespace}"):
        try:
            clusters = list(api.get("daskclusters.kubernetes.dask.org", namespace=namespace))
        except ValueError:  # no Dask operator (CRDs) in this cluster: nothing to delete
            return 0
        for cluster in clusters:
            delete_if_present(cluster)
    return len(clusters)


def delete_session_namespace(api, namespace: str, hub_account: str | None,
                             user: str) -> bool:
    """Delete `namespace` if the hub `hub_account` made it for `user`'s session; return
    whether it did. The hub may delete only the namespaces whose rights the Dask operator
    bound for it (deploy/jupyterhub/hub-rbac.yaml), and asks for no others."""
    from kr8s.objects import Namespace

    if not hub_account:
        return False
    # GETs by name only: the hub may not list namespaces.
    found = Namespace(namespace, api=api)
    with kubernetes_errors(f"cannot delete namespace {namespace}"):
        if not found.exists():
            return False
        found.refresh()
        if found.annotations.get(HUB_ACCOUNT_ANNOTATION) != hub_account or \
                not made_for(found.metadata, user):
            return False
        return delete_if_present(found)


def _wait_until_ready(pod, emit: Emit, timeout: float) -> None:
    def ready() -> bool | Waiting:
        with kubernetes_errors(f"cannot read pod {pod.name}"):
            pod.refresh()
        status = pod.raw.get("status", {})
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        if conditions.get("Ready", {}).get("status") == "True":
            return True
        message = status.get("phase", "Pending")
        scheduled = conditions.get("PodScheduled", {})
        if scheduled.get("status") == "False" and scheduled.get("message"):
            message = f"waiting for a node: {scheduled['message']}"
        for container in status.get("containerStatuses", []):
            waiting = container.get("state", {}).get("waiting")
            if waiting:
                message = f"{waiting.get('reason')}: {waiting.get('message', '')}".strip(": ")
                if waiting.get("reason") in _HOPELESS:
                    raise KubernetesError(f"the session cannot start: {message}")
        return Waiting(message)

    # Asked four times a second, with the pod's readiness probed every second.
    wait_until(ready, timeout, every=0.25,
               tell=lambda message: emit(Event(Phase.LAUNCHING, message)),
               timed_out=lambda said: KubernetesError(
                   f"the session was not ready within {timeout:.0f}s ({said})"))


def launch_kubernetes(image: str, target: KubeTarget, caps: DaskCaps, emit: Emit,
                      timeout: float = 300) -> KubeSession:
    """Create (or find) the user's session and wait until JupyterLab is ready."""
    from kr8s.objects import Namespace, Pod, Secret

    api = connect(target.kubeconfig, target.context)
    names = SessionNames.of(target)
    with kubernetes_errors("cannot look up the session"):
        existing = Pod(names.session, namespace=names.namespace, api=api)
        reused = existing.exists()
        if reused:
            existing.refresh()
            check_owner(existing, target)  # never another user's session and token
            running = existing.spec.containers[0].image
            if running != image:
                raise KubernetesError(
                    f"{target.user} already has a session running {running}; stop it first "
                    f"(pangeo-binder stop --kubernetes --user {target.user})")
    emit(Event(Phase.LAUNCHING, f"{'Found' if reused else 'Creating'} the session of "
                                f"{target.user} in namespace {names.namespace}"))
    deadline = Deadline(timeout)
    with kubernetes_errors(f"cannot read namespace {names.namespace}"):
        created_namespace = not Namespace(names.namespace, api=api).exists()
    try:
        _ensure_namespace(api, names, target, caps)
        for manifest in session_manifests(image, target, caps, secrets.token_hex(16)):
            check_owner(ensure(api, manifest, wait_for_quota=deadline.left(),
                               on_wait=lambda why: emit(Event(Phase.LAUNCHING, why))),
                        target)
        pod = Pod.get(names.session, namespace=names.namespace, api=api)
        _wait_until_ready(pod, emit, deadline.left())
        secret = Secret.get(names.token, namespace=names.namespace, api=api)
        token = base64.b64decode(secret.raw["data"]["token"]).decode()
    except BaseException:
        if not reused:  # leave nothing behind
            # Force: the pod never served anyone, and a kubelet still waiting on an image
            # pull would otherwise hold the namespace's deletion for minutes.
            _delete_session(api, names, target, delete_namespace=created_namespace,
                            force=True)
        raise
    session = KubeSession(namespace=names.namespace, pod=names.session, service=names.session,
                          image=image, token=token, reused=reused)
    emit(Event(Phase.READY, f"Session ready. {session.how_to_reach}"))
    return session


def _delete_session(api, names: SessionNames, target: KubeTarget,
                    delete_namespace: bool, force: bool = False) -> None:
    """Remove the objects made for exactly this user; the namespace's own (its Dask
    clusters and credentials), and with `delete_namespace` the namespace itself, only
    when the namespace is the user's: another user's are never touched."""
    from kr8s.objects import (
        LimitRange,
        Namespace,
        NetworkPolicy,
        Pod,
        ResourceQuota,
        Role,
        RoleBinding,
        Secret,
        Service,
        ServiceAccount,
    )

    ns = names.namespace
    namespace = Namespace(ns, api=api)
    with kubernetes_errors(f"cannot read namespace {ns}"):
        ours = _read(namespace) and made_for(namespace.metadata, target.user)
    if ours:
        delete_dask_clusters(api, ns)
    with kubernetes_errors(f"cannot remove the session of {target.user}"):
        for cls, name in [(Pod, names.session), (Service, names.session),
                          (Secret, names.token), (RoleBinding, names.role), (Role, names.role),
                          (ServiceAccount, names.account), (ResourceQuota, names.quota),
                          (LimitRange, names.quota), (NetworkPolicy, names.ingress),
                          (NetworkPolicy, names.egress), (RoleBinding, OPERATOR_BINDING)]:
            obj = cls(name, namespace=ns, api=api)
            if _read(obj) and made_for(obj.metadata, target.user):
                delete_if_present(obj, force=force and cls is Pod)
        if ours:
            delete_if_present(Secret(DASK_TLS_SECRET, namespace=ns, api=api))
            if delete_namespace:
                delete_if_present(namespace)


def _read(obj) -> bool:
    """Refresh `obj` from the API server; False when there is no such object."""
    import kr8s

    try:
        obj.refresh()
    except kr8s.NotFoundError:
        return False
    return True


def stop_kubernetes(target: KubeTarget, emit: Emit, timeout: float = 120) -> None:
    """Remove the user's session, its Dask clusters and its RBAC objects; the namespace
    too when pangeo-binder made it for this user. Only what was made for exactly this
    user name goes: `a_b` never stops `a.b`, whatever their names' slugs."""
    from kr8s.objects import Namespace, Pod

    api = connect(target.kubeconfig, target.context)
    names = SessionNames.of(target)
    namespace = Namespace(names.namespace, api=api)
    pod = Pod(names.session, namespace=names.namespace, api=api)
    with kubernetes_errors(f"cannot read namespace {names.namespace}"):
        if not _read(namespace):
            emit(Event(Phase.READY, f"{target.user} has no session"))
            return
        ours = made_for(namespace.metadata, target.user)
        if not ours and names.own_namespace(target):
            raise KubernetesError(f"namespace {names.namespace} was not made for "
                                  f"{target.user}; nothing was stopped")
        if _read(pod):
            check_owner(pod, target)
    emit(Event(Phase.LAUNCHING, f"Stopping the session of {target.user}"))
    _delete_session(api, names, target, delete_namespace=ours)
    gone = namespace if ours else pod
    wait_for(lambda: not gone.exists(), timeout,
             f"the session of {target.user} was not gone in {timeout}s")
    emit(Event(Phase.READY, f"Stopped the session of {target.user}"))

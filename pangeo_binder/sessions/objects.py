"""The Kubernetes objects of a user's session, as plain dicts.

Built as data, never as text: a user name, namespace or image is a string wherever it
lands, whatever it holds (`1234`, `null`, `a: b`, a newline), and the objects are
serialised once, by the client that sends them. Names are deterministic (launching twice
finds the first session); every object carries the app.kubernetes.io labels and the
user's slug (`kube.user_slug`; the exact name goes in an annotation, `mark_owner`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dask_operator.contract import (
    HUB_ACCOUNT_ANNOTATION,
    MAX_WORKERS_ANNOTATION,
    OPERATOR_ACCOUNT,
    OPERATOR_BINDING,
    OPERATOR_SESSION_ROLE,
    PART_OF,
    SESSION_LABEL,
    USER_ANNOTATION,
    USER_LABEL,
)
from ..dask_operator.pod_security import NB_UID
from ..kube import user_slug
from .dask_policy import DaskCaps

Object = dict[str, Any]


@dataclass(frozen=True)
class KubeTarget:
    user: str
    namespace: str | None = None  # default: pangeo-<user>, one namespace per user
    kubeconfig: Path | None = None
    context: str | None = None


@dataclass(frozen=True)
class SessionNames:
    namespace: str
    account: str
    role: str
    quota: str
    token: str
    session: str
    ingress: str
    egress: str

    @classmethod
    def of(cls, target: KubeTarget) -> SessionNames:
        # As the hub's NAMESPACE_TEMPLATE: one user, one namespace, by either path.
        base = f"pangeo-{user_slug(target.user)}"
        return cls(namespace=target.namespace or base, account=base, role=f"{base}-dask",
                   quota=f"{base}-caps", token=f"{base}-token", session=f"{base}-session",
                   ingress=f"{base}-ingress", egress=f"{base}-egress")

    def own_namespace(self, target: KubeTarget) -> bool:
        """Whether the namespace is the one made for this user alone (not one named on
        the command line, which several users' sessions may share)."""
        return self.namespace == f"pangeo-{user_slug(target.user)}"


def labels(slug: str, component: str) -> dict[str, str]:
    """The labels every object of a session carries (`slug`, the user's slug)."""
    return {"app.kubernetes.io/name": "pangeo-binder",
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": "pangeo-binder",
            "app.kubernetes.io/component": component,
            USER_LABEL: slug}


def session_namespace(name: str, user: str, slug: str, caps: DaskCaps,
                      hub_account: str | None = None) -> Object:
    """The namespace of `user`'s session (`slug`, the user's slug), marked as a session
    namespace with its caps. With `hub_account` ("NAMESPACE:NAME" of the hub's
    ServiceAccount), it asks the Dask operator to give that account the rights a hub
    needs there, and nowhere else."""
    annotations = {
        # The operator policy reads the worker cap from here.
        MAX_WORKERS_ANNOTATION: str(caps.max_workers),
        # Whose namespace it is: the exact name decides ownership (`kube.made_for`).
        USER_ANNOTATION: user,
    }
    if hub_account:
        annotations[HUB_ACCOUNT_ANNOTATION] = hub_account
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name,
        "labels": {
            "app.kubernetes.io/part-of": PART_OF,
            # Pod Security Admission (enforced by Kubernetes 1.25 and later): every pod
            # the product makes here passes the restricted profile.
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            # What the Dask operator's admission webhooks select session namespaces by.
            USER_LABEL: slug,
        },
        "annotations": annotations}}


def credentials_labels(slug: str) -> dict[str, str]:
    """The labels of the session namespace's Dask credentials Secret (sessions.dask_tls)."""
    return {"app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/component": "dask-tls", USER_LABEL: slug}


def _metadata(name: str, namespace: str, slug: str, component: str) -> Object:
    return {"name": name, "namespace": namespace, "labels": labels(slug, component)}


def access_objects(names: SessionNames, slug: str, caps: DaskCaps) -> list[Object]:
    """A user's access and caps in their namespace: least-privilege ServiceAccount, Role
    and RoleBinding, ResourceQuota and LimitRange, and NetworkPolicies. Made by
    `pangeo-binder launch --kubernetes` (with the session, `session_objects`) and by the
    JupyterHub hooks (whose spawner makes the pod). `slug` is the user's slug."""
    namespace = names.namespace
    quota = caps.quota()
    operator_namespace, operator_account = OPERATOR_ACCOUNT

    def metadata(name: str, component: str) -> Object:
        return _metadata(name, namespace, slug, component)

    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": metadata(names.account, "rbac")}
    # Least privilege for the session: its own Dask clusters, read access to what they
    # are made of (pods, services, logs, events), nothing else; in this namespace only.
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": metadata(names.role, "rbac"),
        "rules": [
            {"apiGroups": ["kubernetes.dask.org"],
             "resources": ["daskclusters", "daskworkergroups", "daskworkergroups/scale",
                           "daskjobs", "daskautoscalers"],
             "verbs": ["get", "list", "watch", "patch", "create", "delete"]},
            {"apiGroups": [""], "resources": ["pods", "pods/status", "services"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": metadata(names.role, "rbac"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": names.role},
        "subjects": [{"kind": "ServiceAccount", "name": names.account,
                      "namespace": namespace}],
    }
    # The Dask operator's rights in this namespace, and in session namespaces only:
    # making the pods, Service and Deployments of the session's Dask clusters (it holds
    # no pod, Service or Deployment rights anywhere else; deploy/dask-operator/operator.yaml).
    operator_binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": metadata(OPERATOR_BINDING, "rbac"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": OPERATOR_SESSION_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": operator_account,
                      "namespace": operator_namespace}],
    }
    # The caps, enforced by the API server: no more pods, cores or memory than the
    # session plus a scheduler and the allowed workers. Cores are requests; a Dask pod's
    # CPU limit may be higher (a burst into idle CPU, which its start needs), and is
    # capped as well.
    resource_quota = {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": metadata(names.quota, "quota"),
        "spec": {"hard": {"pods": str(quota["pods"]), "requests.cpu": quota["cpu"],
                          "limits.cpu": quota["cpu_limit"],
                          "requests.memory": quota["memory"],
                          "limits.memory": quota["memory"]}},
    }
    # Pods that name no resources (the operator's, say) get a worker's size; none may
    # exceed the largest of the session and a worker's CPU limit.
    limit_range = {
        "apiVersion": "v1", "kind": "LimitRange",
        "metadata": metadata(names.quota, "quota"),
        "spec": {"limits": [{
            "type": "Container",
            "default": {"cpu": quota["worker_cpu_limit"], "memory": caps.worker_memory},
            "defaultRequest": {"cpu": caps.worker_cores, "memory": caps.worker_memory},
            "max": {"cpu": quota["max_container_cpu"],
                    "memory": quota["max_container_memory"]},
        }]},
    }
    # Who may reach this namespace's pods: its own pods, the hub (whose proxy opens the
    # session) and the Dask operator (scaling, idle checks). Enforced only where the
    # cluster's network plugin implements NetworkPolicy; the Dask clusters' TLS holds
    # everywhere.
    ingress = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": metadata(names.ingress, "network"),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {}}]},
                {"from": [{"namespaceSelector": {
                    "matchLabels": {"pangeo-binder/role": "hub"}}}],
                 "ports": [{"port": 8888}]},
                {"from": [{"namespaceSelector": {
                    "matchLabels": {"pangeo-binder/role": "dask-operator"}}}],
                 "ports": [{"port": 8786}, {"port": 8787}]},
            ],
        },
    }
    # Anywhere but the cloud's metadata service (instance credentials live there).
    egress = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": metadata(names.egress, "network"),
        "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                 "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0",
                                                 "except": ["169.254.169.254/32"]}}]}]},
    }
    return [account, role, binding, operator_binding, resource_quota, limit_range,
            ingress, egress]


def pod_security() -> Object:
    """The pod-level security of a session pod (and of a notebook Job's pod, made
    alike)."""
    return {"runAsUser": NB_UID, "runAsGroup": NB_UID, "fsGroup": NB_UID,
            "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> Object:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def session_resources(caps: DaskCaps) -> Object:
    """Requests equal to limits: the ResourceQuota counts both, and a session gets what
    it was promised."""
    size = {"cpu": caps.session_cores, "memory": caps.session_memory}
    return {"requests": dict(size), "limits": dict(size)}


def env_list(values: Mapping[str, str]) -> list[Object]:
    return [{"name": key, "value": value} for key, value in values.items()]


def session_objects(names: SessionNames, slug: str, image: str, caps: DaskCaps,
                    token: str, dask_env: Mapping[str, str],
                    tls_env: Sequence[Mapping[str, Any]]) -> list[Object]:
    """Everything one user's session is made of, in the user's namespace: the access and
    caps objects, then the token, the Service and the Pod. `slug` is the user's slug."""
    namespace = names.namespace

    def metadata(name: str) -> Object:
        return _metadata(name, namespace, slug, "session")

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata(names.token),
              "type": "Opaque", "stringData": {"token": token}}
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": metadata(names.session),
        "spec": {"type": "ClusterIP",
                 "selector": {"app.kubernetes.io/component": "session", USER_LABEL: slug},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8888}]},
    }
    pod_metadata = metadata(names.session)
    pod_metadata["labels"][SESSION_LABEL] = "true"  # what the Dask operator's policy looks for
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": pod_metadata,
        "spec": {
            "serviceAccountName": names.account,
            "enableServiceLinks": False,
            "restartPolicy": "Always",
            "securityContext": pod_security(),
            "containers": [{
                "name": "notebook",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "args": ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser"],
                "ports": [{"name": "http", "containerPort": 8888}],
                "env": [
                    {"name": "JUPYTER_TOKEN",
                     "valueFrom": {"secretKeyRef": {"name": names.token, "key": "token"}}},
                    *env_list(dask_env),
                    # The session's Dask credentials: its clusters accept no one else.
                    *(dict(entry) for entry in tls_env),
                ],
                "securityContext": container_security(),
                "resources": session_resources(caps),
                "readinessProbe": {"httpGet": {"path": "/api", "port": 8888},
                                   "periodSeconds": 1, "failureThreshold": 120},
            }],
        },
    }
    return [*access_objects(names, slug, caps), secret, service, pod]

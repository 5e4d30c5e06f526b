"""JupyterHub hooks for KubeSpawner: a "launch binder" click gets what
`pangeo-binder launch --kubernetes` gives — the user's own namespace with least-privilege
RBAC and caps, a locked-down pod running the pinned image, and a Dask configuration
whose clusters belong to the session and go with it.

In jupyterhub_config.py, or the helm chart's `hub.extraConfig`:

    from pangeo_binder.sessions.dask_policy import DaskCaps
    from pangeo_binder.hub.hooks import configure
    configure(c, caps=DaskCaps(max_workers=4),
              allowed_images=["registry.example.org/binder-"])

`configure` sets only `c.KubeSpawner` traits, so it works with plain KubeSpawner and
with BinderHub's BinderSpawner (a KubeSpawner subclass) alike.

BinderHub runs in one of two auth modes, and the hooks follow its `BinderSpawner`:
- auth disabled (a public binder): the launcher makes up a token, passes it as
  `user_options["token"]`, and hands the user `URL?token=TOKEN`. BinderSpawner puts that
  token on the server's command line, so the server must be a plain Jupyter server
  (`jupyter-lab`) that accepts exactly that token; `jupyterhub-singleuser` would ignore it
  and answer 403.
- auth enabled: users log in to the hub, and the server is `jupyterhub-singleuser`, which
  lets in only its owner through the hub's OAuth.
A plain KubeSpawner (no BinderSpawner) is the second case. The per-user namespace, RBAC,
caps and Dask setup are the same in both.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..dask_operator.admission import tls_env
from ..dask_operator.contract import SESSION_SELECTOR, USER_ANNOTATION, USER_LABEL
from ..errors import PangeoBinderError
from ..kube import connect, user_slug
from ..sessions.dask_policy import DaskCaps, quantity, session_dask_env
from ..sessions.launch import (
    KubeTarget,
    delete_dask_clusters,
    delete_session_namespace,
    prepare_user_access,
)

# As `launch --kubernetes` (SessionNames): pangeo-SLUG, with KubeSpawner 7's safe slug
# (`kube.user_slug`), one namespace per user name. `{username}` gives that slug only under
# the default `slug_scheme = "safe"`; under "escape" it would be an escaped name that is
# not length-bounded and not the launcher's, so the template names the safe field.
NAMESPACE_TEMPLATE = "pangeo-{safe_username}"


SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def hub_account(token_file: Path = SERVICE_ACCOUNT_TOKEN) -> str | None:
    """The hub's own ServiceAccount, "NAMESPACE:NAME", from its token's subject
    (system:serviceaccount:NAMESPACE:NAME); None outside a pod."""
    try:
        payload = token_file.read_text().split(".")[1]
    except (OSError, IndexError):
        return None
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    prefix = "system:serviceaccount:"
    subject = claims.get("sub", "")
    return subject.removeprefix(prefix) if subject.startswith(prefix) else None


class ImageNotAllowedError(PangeoBinderError):
    """A spawn asked for an image outside the hub's allowed prefixes."""


class LaunchTokenError(PangeoBinderError):
    """A spawn on a hub without login carried no launch token."""


def hub_auth_enabled(spawner) -> bool:
    """Whether users log in to the hub: BinderSpawner's `auth_enabled` (False on a public
    BinderHub); a spawner without that trait is a hub's own, with login."""
    return bool(getattr(spawner, "auth_enabled", True))


def server_command(spawner) -> list[str]:
    """The session's server: hub OAuth where users log in, else a plain JupyterLab that
    BinderSpawner gives the launch token (see the module docstring)."""
    if hub_auth_enabled(spawner):
        return ["jupyterhub-singleuser"]
    if not (spawner.user_options or {}).get("token"):
        # Without one the server would make up a token nobody is given, or none at all.
        raise LaunchTokenError("this hub has no login, so a spawn must carry its launch "
                               "token in user_options['token'] (as BinderHub's launcher "
                               "sends it)")
    return ["jupyter-lab"]


@dataclass(frozen=True)
class HubPolicy:
    caps: DaskCaps = field(default_factory=DaskCaps)
    # Prefixes an image requested through user_options (BinderHub's launcher sends
    # {"image": ...}) must start with; none allowed when empty. Without this any hub
    # user could run any image with the session's Kubernetes access.
    allowed_images: tuple[str, ...] = ()

    def image_for(self, spawner) -> str:
        requested = (spawner.user_options or {}).get("image")
        if not requested:
            return spawner.image
        if not any(requested.startswith(prefix) for prefix in self.allowed_images):
            raise ImageNotAllowedError(
                f"image {requested!r} is not allowed on this hub (allowed: "
                f"{', '.join(self.allowed_images) or 'only the default image'})")
        return requested

    async def pre_spawn(self, spawner) -> None:
        """Before KubeSpawner makes the pod: the user's RBAC and caps, and the pod's
        image, service account, labels and Dask configuration."""
        image = self.image_for(spawner)
        spawner.cmd = server_command(spawner)
        user = spawner.user.name
        target = KubeTarget(user=user, namespace=spawner.namespace)
        names = await asyncio.to_thread(
            lambda: prepare_user_access(connect(), target, self.caps, hub_account()))
        spawner.image = image
        spawner.service_account = names.account
        # The labels the Dask operator's policy looks for to make the pod own the user's
        # clusters, and the user's slug, as on the session's other objects.
        spawner.extra_labels = {**spawner.extra_labels, **SESSION_SELECTOR,
                                USER_LABEL: user_slug(user)}
        # The exact name, as on the session's other objects. KubeSpawner expands {name}
        # templates in annotations: a name's braces are escaped.
        spawner.extra_annotations = {
            **spawner.extra_annotations,
            USER_ANNOTATION: user.replace("{", "{{").replace("}", "}}")}
        # KubeSpawner expands {name} templates in environment values: escape the braces
        # of JSON and of Dask's dashboard link template.
        dask_env = {key: value.replace("{", "{{").replace("}", "}}")
                    for key, value in session_dask_env(image, names.namespace,
                                                       self.caps).items()}
        # The session's Dask credentials, from the Secret prepare_user_access made.
        tls = {entry["name"]: entry.get("value") or {"valueFrom": entry["valueFrom"]}
               for entry in tls_env()}
        spawner.environment = {**spawner.environment, **dask_env, **tls}
        spawner.log.info("pangeo-binder: %s gets %s in %s (up to %d Dask workers)",
                         user, image, names.namespace, self.caps.max_workers)

    async def post_stop(self, spawner) -> None:
        """After the server stops, nothing of the session stays: its Dask clusters go at
        once (the operator policy would remove them once it sees the pod gone; this does
        not wait for it), then the namespace this hub made for it, with the user's RBAC
        objects, quota, credentials and anything else in it. BinderHub's temporary users
        would otherwise leave one namespace per click."""
        def clean() -> tuple[int, bool]:
            api = connect()
            return (delete_dask_clusters(api, spawner.namespace),
                    delete_session_namespace(api, spawner.namespace, hub_account(),
                                             spawner.user.name))

        clusters, deleted = await asyncio.to_thread(clean)
        spawner.log.info("pangeo-binder: %s stopped: %d Dask cluster(s) deleted, "
                         "namespace %s %s", spawner.user.name, clusters, spawner.namespace,
                         "deleted" if deleted else "kept (not made by this hub)")


def configure(c: Any, caps: DaskCaps | None = None,
              allowed_images: Iterable[str] = ()) -> HubPolicy:
    """Set KubeSpawner up for pangeo-binder sessions; return the policy it uses."""
    policy = HubPolicy(caps=caps or DaskCaps(), allowed_images=tuple(allowed_images))
    spawner = c.KubeSpawner
    spawner.pre_spawn_hook = policy.pre_spawn
    spawner.post_stop_hook = policy.post_stop
    # One namespace per user: the unit the Role, quota and Dask policy apply to.
    spawner.enable_user_namespaces = True
    spawner.user_namespace_template = NAMESPACE_TEMPLATE
    spawner.automount_service_account_token = True  # KubeCluster() talks to the API
    # A Pangeo image is large to pull and its server slow to import on a fraction of a
    # core: KubeSpawner's defaults (30 s to answer) give up on healthy sessions.
    spawner.start_timeout = 600
    spawner.http_timeout = 180
    # The same pod security as `launch --kubernetes`.
    spawner.uid = 1000
    spawner.gid = 1000
    spawner.fs_gid = 1000
    spawner.allow_privilege_escalation = False
    spawner.container_security_context = {"capabilities": {"drop": ["ALL"]},
                                          "runAsNonRoot": True,
                                          "seccompProfile": {"type": "RuntimeDefault"}}
    # Requests equal to limits: the ResourceQuota counts both, and a session gets what
    # it was promised.
    cores = float(quantity(policy.caps.session_cores, "session cores"))
    memory = int(quantity(policy.caps.session_memory, "session memory"))
    spawner.cpu_guarantee = spawner.cpu_limit = cores
    spawner.mem_guarantee = spawner.mem_limit = memory
    return policy

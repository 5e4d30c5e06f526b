"""BinderHub's launch quota and `/health` pod count, for sessions in per-user namespaces.

BinderHub counts running sessions as the pods labelled `component=singleuser-server` in
its own namespace. pangeo-binder runs each session in its user's namespace, so BinderHub
would always count zero: `LaunchQuota.total_quota` and a repository's `quota` would never
refuse a launch, and `/health` would report no user pods. These two classes count the
sessions across namespaces instead, and are otherwise BinderHub's own. In BinderHub's
configuration (deploy/binderhub/values.yaml):

    c.BinderHub.launch_quota_class = SessionLaunchQuota
    c.BinderHub.health_handler_class = SessionHealthHandler

Listing pods in every namespace takes a ClusterRole (deploy/binderhub/binderhub-rbac.yaml).
This module runs inside BinderHub, beside its `binderhub` and `kubernetes` packages, and
imports nothing else of pangeo-binder.
"""

from __future__ import annotations

import asyncio
import json

from binderhub.health import KubernetesHealthHandler, at_most_every
from binderhub.quota import KubernetesLaunchQuota, LaunchQuotaExceeded, ServerQuotaCheck

# KubeSpawner's labels on every server pod, and pangeo-binder's on a session's: what
# BinderHub selects in its own namespace, and pangeo-binder's mark, in all of them.
SESSION_SELECTOR = ("app=jupyterhub,component=singleuser-server,"
                    "app.kubernetes.io/part-of=pangeo-binder,pangeo-binder/session=true")
BUILD_SELECTOR = "component=binderhub-build"
REQUEST_TIMEOUT = 30  # seconds, as BinderHub's own calls to the API server


def _list_session_pods(api) -> list[dict]:
    answer = api.list_pod_for_all_namespaces(label_selector=SESSION_SELECTOR,
                                             _preload_content=False,
                                             _request_timeout=REQUEST_TIMEOUT)
    return [pod for pod in json.loads(answer.read())["items"]
            if not pod["metadata"].get("deletionTimestamp")]


def _runs(pod: dict, repository: str) -> bool:
    """Whether one of the pod's containers runs an image of `repository` (any tag)."""
    return any(c["image"].rsplit(":", 1)[0] == repository for c in pod["spec"]["containers"])


class SessionLaunchQuota(KubernetesLaunchQuota):
    """KubernetesLaunchQuota counting the sessions of every user namespace."""

    async def check_repo_quota(self, image_name, repo_config, repo_url):
        repo_quota = repo_config.get("quota")
        if self.total_quota is None and not repo_quota:
            return None
        pods = await asyncio.wrap_future(self.executor.submit(_list_session_pods, self.api))
        total = len(pods)
        if self.total_quota is not None and total >= self.total_quota:
            self.log.error(f"BinderHub is full: {total}/{self.total_quota}")
            raise LaunchQuotaExceeded("Too many users on this BinderHub! Try again soon.",
                                      quota=self.total_quota, used=total, status="pod_quota")
        # The image name without its tag is one per repository (the tag is the commit).
        matching = sum(_runs(pod, image_name.rsplit(":", 1)[0]) for pod in pods)
        if repo_quota and matching >= repo_quota:
            self.log.error(f"{repo_url} has exceeded quota: {matching}/{repo_quota} "
                           f"({total} total)")
            raise LaunchQuotaExceeded(f"Too many users running {repo_url}! Try again soon.",
                                      quota=repo_quota, used=matching, status="repo_quota")
        return ServerQuotaCheck(total=total, matching=matching, quota=repo_quota)


class SessionHealthHandler(KubernetesHealthHandler):
    """`/health` whose pod count has the sessions of every user namespace, and the build
    pods of BinderHub's own."""

    @at_most_every
    async def _get_pods(self):
        builder = self.settings["example_builder"]
        pool = self.settings["executor"]

        def build_pods() -> list[dict]:
            answer = builder.api.list_namespaced_pod(
                builder.namespace, label_selector=BUILD_SELECTOR,
                _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
            return json.loads(answer.read())["items"]

        sessions, builds = await asyncio.gather(
            asyncio.wrap_future(pool.submit(_list_session_pods, builder.api)),
            asyncio.wrap_future(pool.submit(build_pods)))
        return [sessions, builds]

"""Stand-in for binderhub.quota: the base classes and values BinderHub's builder uses."""

from collections import namedtuple

import kubernetes.config
from kubernetes import client
from traitlets import Any, Integer, Unicode, default
from traitlets.config import LoggingConfigurable


class LaunchQuotaExceeded(Exception):
    def __init__(self, message, *, quota, used, status):
        super().__init__()
        self.message, self.quota, self.used, self.status = message, quota, used, status


ServerQuotaCheck = namedtuple("ServerQuotaCheck", ["total", "matching", "quota"])


class LaunchQuota(LoggingConfigurable):
    executor = Any(allow_none=True)
    total_quota = Integer(None, allow_none=True, config=True)

    async def check_repo_quota(self, image_name, repo_config, repo_url):
        return None


class KubernetesLaunchQuota(LaunchQuota):
    api = Any()
    namespace = Unicode(config=True)

    @default("api")
    def _default_api(self):
        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()
        return client.CoreV1Api()

# Jupyter server settings of pangeo-binder images.
import os


# jupyter-server-proxy may reach the Dask dashboards of the session's own clusters (their
# schedulers are Services in the session's namespace) and local ones; nothing else.
def _dashboard_hosts(handler, host):
    name = host.rsplit(":", 1)[0]
    if name in ("localhost", "127.0.0.1"):
        return True
    namespace = os.environ.get("DASK_KUBERNETES__NAMESPACE")
    return bool(namespace) and any(
        name.endswith(f".{namespace}{suffix}") for suffix in ("", ".svc", ".svc.cluster.local")
    )


c.ServerProxy.host_allowlist = _dashboard_hosts  # noqa: F821 (c is Jupyter's config)

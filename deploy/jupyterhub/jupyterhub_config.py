# JupyterHub on Kubernetes with KubeSpawner and pangeo-binder's hooks: the hub that
# deploy/jupyterhub/install runs (the dev cluster's end-to-end test uses it), and a
# template for a hub outside the BinderHub chart.
#
# The pangeo-binder part is not repeated here: it is the BinderHub chart's
# `jupyterhub.hub.extraConfig` in deploy/binderhub/values.yaml, executed below the way
# the chart executes it (each snippet, in key order, with `c` in scope).
import os
from pathlib import Path

from ruamel.yaml import YAML

c = get_config()  # noqa: F821 (JupyterHub provides it)
here = Path(__file__).resolve().parent

c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
# Users come from the BinderHub-style service below, as in the BinderHub chart (no
# login: a launch creates a user and starts its server through the REST API).
c.JupyterHub.authenticator_class = "null"
c.JupyterHub.bind_url = "http://0.0.0.0:8000"
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = f"http://{os.environ['HUB_POD_IP']}:8081"  # for user pods
c.JupyterHub.cleanup_servers = False  # a hub restart leaves running sessions alone
c.JupyterHub.services = [{"name": "binder", "api_token": os.environ["BINDER_API_TOKEN"]}]
c.JupyterHub.load_roles = [{
    "name": "binder", "services": ["binder"],
    # BinderHub's service role, plus making tokens that open a user's server (the
    # launcher hands one to the user).
    "scopes": ["servers", "admin:users", "tokens", "access:servers"],
}]
# The image of a spawn that names none (BinderHub always names one).
c.KubeSpawner.image = os.environ.get("PANGEO_BINDER_DEFAULT_IMAGE", "")

values = YAML(typ="safe").load((here / "values.yaml").read_text())
for name, snippet in sorted(values["jupyterhub"]["hub"]["extraConfig"].items()):
    exec(compile(snippet, f"hub.extraConfig.{name}", "exec"))

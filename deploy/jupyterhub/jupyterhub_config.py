# JupyterHub on Kubernetes as the BinderHub chart configures it (BinderSpawner, the
# binder service, either auth mode) with pangeo-binder's hooks: the hub that
# deploy/jupyterhub/install runs (the dev cluster's end-to-end tests use it), and a
# template for a hub outside the BinderHub chart.
#
# The pangeo-binder part is not repeated here: it is the BinderHub chart's
# `jupyterhub.hub.extraConfig` in deploy/binderhub/values.yaml, executed below the way
# the chart executes it (each snippet, in key order, with `c` in scope).
import os
import sys
from pathlib import Path

from ruamel.yaml import YAML

c = get_config()  # noqa: F821 (JupyterHub provides it)
here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
from binder_spawner import BinderSpawner  # noqa: E402 (the chart's spawner, see there)

c.JupyterHub.spawner_class = BinderSpawner
c.JupyterHub.bind_url = "http://0.0.0.0:8000"
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = f"http://{os.environ['HUB_POD_IP']}:8081"  # for user pods
c.JupyterHub.cleanup_servers = False  # a hub restart leaves running sessions alone
c.JupyterHub.services = [{"name": "binder", "api_token": os.environ["BINDER_API_TOKEN"]}]
# BinderHub's service role, as its chart loads it: start servers, and create users (the
# temporary user of each launch on a hub without login). BinderHub never asks the hub for
# tokens: its launcher makes up the token it gives the user.
c.JupyterHub.load_roles = [{"name": "binder", "services": ["binder"],
                            "scopes": ["servers", "admin:users"]}]
values = YAML(typ="safe").load((here / "values.yaml").read_text())
# As the chart: `hub.config` first, then the `hub.extraConfig` snippets (at the end).
for section, settings in values["jupyterhub"]["hub"].get("config", {}).items():
    c[section].update(settings)
# The chart's two auth modes (`config.BinderHub.auth_enabled` and
# `jupyterhub.hub.config.BinderSpawner.auth_enabled`); this hub's setting wins.
if os.environ.get("PANGEO_BINDER_HUB_AUTH", "disabled") == "enabled":
    # Users log in. A real deployment uses an OAuth provider (GitHub, ...); this hub's
    # users have one shared password, for tests and demos only.
    c.BinderSpawner.auth_enabled = True
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = os.environ["PANGEO_BINDER_HUB_PASSWORD"]
    c.Authenticator.allow_all = True  # whoever has the password
    # As BinderHub's documentation asks: a login must not start a server of its own
    # (without an image); servers start from BinderHub's launches.
    c.JupyterHub.redirect_to_server = False
else:
    # A public binder: no login; a launch creates a temporary user through the REST API.
    c.BinderSpawner.auth_enabled = False
    c.JupyterHub.authenticator_class = "null"
# The image of a spawn that names none (BinderHub always names one).
c.KubeSpawner.image = os.environ.get("PANGEO_BINDER_DEFAULT_IMAGE", "")

for name, snippet in sorted(values["jupyterhub"]["hub"]["extraConfig"].items()):
    exec(compile(snippet, f"hub.extraConfig.{name}", "exec"))

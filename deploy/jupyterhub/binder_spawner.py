"""A stand-in for the `BinderSpawner` that the BinderHub helm chart defines.

The chart does not import its spawner from a package: it writes `BinderSpawnerMixin` and
`class BinderSpawner(BinderSpawnerMixin, KubeSpawner)` into the hub's configuration
(`jupyterhub.hub.extraConfig` of its values), and BinderHub is not installable here. This
module behaves as that spawner does, so that the hub of deploy/jupyterhub spawns exactly as
a BinderHub's hub does:

- `auth_enabled` (False by default, as the chart sets it) and `cors_allow_origin`;
- without auth, `start` refuses a spawn without `token` or `image` in user_options, and the
  server's arguments are the Jupyter server's own (address, port, the hub's base URL, the
  launch token, trusted proxy headers, the default URL), each given as `NotebookApp` and
  as `ServerApp` option; with auth, KubeSpawner's arguments;
- the image comes from user_options["image"];
- the launcher's `repo_url` and `binder_*` options become BINDER_* environment variables.
"""

from kubespawner import KubeSpawner
from tornado import web
from traitlets import Bool, Unicode

LAUNCH_OPTIONS = ("binder_ref_url", "binder_launch_host", "binder_persistent_request",
                  "binder_request", "binder_client_ip")


class BinderSpawner(KubeSpawner):
    auth_enabled = Bool(False, config=True, help="Users log in to the hub.")
    cors_allow_origin = Unicode("", config=True, help="Origins that may call the server.")

    def get_args(self):
        if self.auth_enabled:
            return super().get_args()
        options = {
            "ip": "0.0.0.0",
            "port": str(self.port),
            "base_url": self.server.base_url,
            "token": self.user_options["token"],
            "trust_xheaders": "True",
        }
        if self.default_url:
            options["default_url"] = self.default_url
        if self.cors_allow_origin:
            options["allow_origin"] = self.cors_allow_origin
        if self.cors_allow_origin == "*":
            options["allow_origin_pat"] = ".*"
        args = [f"--{name}={value}" if name in ("ip", "port") else
                f"--NotebookApp.{name}={value}" for name, value in options.items()]
        args += self.args
        return args + [arg.replace("--NotebookApp.", "--ServerApp.")
                       for arg in args if arg.startswith("--NotebookApp.")]

    def start(self):
        if not self.auth_enabled:
            for option in ("token", "image"):
                if option not in self.user_options:
                    raise web.HTTPError(400, f"{option} required")
        if "image" in self.user_options:
            self.image = self.user_options["image"]
        return super().start()

    def get_env(self):
        env = super().get_env()
        if "repo_url" in self.user_options:
            env["BINDER_REPO_URL"] = self.user_options["repo_url"]
        env.update({option.upper(): self.user_options[option]
                    for option in LAUNCH_OPTIONS if option in self.user_options})
        return env

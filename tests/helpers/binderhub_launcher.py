"""BinderHub's side of a "launch binder" click, spoken to a real JupyterHub.

BinderHub is not installable here, so these helpers make the same requests, in the same
order and with the same bodies, as BinderHub's launcher (binderhub/launcher.py) and as a
browser following the link BinderHub hands it. Nothing here asks the hub for a token:
BinderHub never does.

- `Launcher.launch`: on a hub without login, `POST /hub/api/users/{name}` (a temporary
  user named from the repository URL plus 8 random characters); on a hub with login, a
  check that the logged-in user has no server running. Then `POST
  /hub/api/users/{name}/servers/` with `{image, repo_url, token, binder_ref_url,
  binder_launch_host, binder_request, binder_persistent_request, binder_client_ip}`, the
  token being 16 random bytes in URL-safe base64; then the progress event stream until
  `ready` or `failed`. It returns what BinderHub's `ready` event carries: `url`
  (hub URL + `user/{name}/`) and `token`.
- `Browser`: cookies and redirects, as a browser opening `{url}?token={token}`, and a
  login form for a hub with login.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import random
import string
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

REPO_URL = "https://github.com/pangeo-data/pangeo-binder-example"


class LaunchFailed(Exception):
    pass


@dataclass
class Launch:
    username: str
    url: str
    token: str
    events: list[dict]


class Launcher:
    """BinderHub's launcher with its `hub_url` and the binder service's API token."""

    def __init__(self, hub_url: str, api_token: str, auth_enabled: bool = False) -> None:
        self.hub_url = hub_url.rstrip("/") + "/"
        self.api_token = api_token
        self.auth_enabled = auth_enabled

    def api(self, method: str, path: str, body: bytes | None = None, timeout: float = 60):
        request = urllib.request.Request(
            f"{self.hub_url}hub/api/{path}", method=method, data=body,
            headers={"Authorization": f"token {self.api_token}"})
        return urllib.request.urlopen(request, timeout=timeout)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        """An API call's status and JSON body, errors included (for tests and cleanup)."""
        data = None if body is None else json.dumps(body).encode()
        try:
            with self.api(method, path, data) as answer:
                text = answer.read()
                return answer.status, json.loads(text) if text else {}
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    @staticmethod
    def unique_name(repo_url: str = REPO_URL) -> str:
        """A temporary user's name, as BinderHub makes it from the repository URL."""
        prefix = urllib.parse.urlparse(repo_url).path.strip("/").replace("/", "-").lower()
        prefix = prefix.removesuffix(".git")
        if len(prefix) > 32:
            prefix = f"{prefix[:15]}-{prefix[-15:]}"
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=8))
        return f"{prefix}-{suffix}"

    def launch(self, image: str, username: str, repo_url: str = REPO_URL,
               timeout: float = 300) -> Launch:
        name = urllib.parse.quote(username, safe="@~")
        if not self.auth_enabled:
            self.api("POST", f"users/{name}", b"").close()
        else:
            with self.api("GET", f"users/{name}") as answer:
                if "" in json.load(answer)["servers"]:
                    raise LaunchFailed(f"User {username} already has a running server.")
        token = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=\n")
        data = {
            "image": image, "repo_url": repo_url, "token": token,
            "binder_ref_url": f"{repo_url}/tree/0123456789abcdef",
            "binder_launch_host": "https://binder.example.org/",
            "binder_request": "v2/gh/pangeo-data/pangeo-binder-example/main",
            "binder_persistent_request":
                "v2/gh/pangeo-data/pangeo-binder-example/0123456789abcdef",
            "binder_client_ip": "192.0.2.10",
        }
        try:
            self.api("POST", f"users/{name}/servers/", json.dumps(data).encode()).close()
        except urllib.error.HTTPError as error:
            raise LaunchFailed(f"{error.code}: {error.read()[:500]!r}") from None
        events = self.progress(name, timeout)
        if not events or not events[-1].get("ready"):
            raise LaunchFailed(f"the spawn failed: {events[-1:] or 'no events'}")
        return Launch(username, f"{self.hub_url}user/{name}/", token, events)

    def progress(self, name: str, timeout: float) -> list[dict]:
        """The server's progress events until `ready` or `failed` (or the stream ends)."""
        events = []
        with self.api("GET", f"users/{name}/server/progress", timeout=timeout) as stream:
            for raw in stream:
                line = raw.decode("utf8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                events.append(json.loads(line.split(":", 1)[1]))
                if events[-1].get("ready") or events[-1].get("failed"):
                    break
        return events


@dataclass
class Page:
    status: int
    url: str
    text: str


class Browser:
    """Cookies and redirects, and nothing else (no Authorization header)."""

    def __init__(self) -> None:
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, url: str) -> Page:
        try:
            with self.opener.open(url, timeout=60) as answer:
                return Page(answer.status, answer.url, answer.read().decode("utf8", "replace"))
        except urllib.error.HTTPError as error:
            return Page(error.code, error.url, error.read().decode("utf8", "replace"))

    def log_in(self, hub_url: str, username: str, password: str) -> None:
        """The hub's login form, with the XSRF token its page sets."""
        login = f"{hub_url.rstrip('/')}/hub/login"
        self.get(login)
        xsrf = next(c.value for c in self.cookies if c.name == "_xsrf")
        form = urllib.parse.urlencode({"username": username, "password": password,
                                       "_xsrf": xsrf}).encode()
        with self.opener.open(urllib.request.Request(login, data=form), timeout=60) as answer:
            assert "/hub/login" not in answer.url, f"{username} could not log in"


def opens_jupyterlab(page: Page) -> bool:
    return page.status == 200 and "/lab" in page.url and "JupyterLab" in page.text


# ---------------------------------------------------------------- the hub under test

HUB_NAMESPACE = "pangeo-hub"
HUB_ACCOUNT = f"system:serviceaccount:{HUB_NAMESPACE}:hub"


@dataclass
class InstalledHub:
    url: str
    api_token: str
    password: str | None  # the users' password, on a hub with login


def install_hub(registry: str, *, auth: bool) -> InstalledHub:
    """deploy/jupyterhub/install with the hub image, in the given auth mode, with caps
    small enough for a 2-core machine: two sessions, a scheduler and 2 workers."""
    import os
    import subprocess

    from tests.helpers.cli import REPO_ROOT, TEST_PREFIX, run_cli

    result = run_cli("base", "--hub")
    assert result.returncode == 0, result.stderr[-3000:]
    settings = {
        "PANGEO_BINDER_ALLOWED_IMAGES": f"{registry}/{TEST_PREFIX}",
        "PANGEO_BINDER_HUB_AUTH": "enabled" if auth else "disabled",
        "PANGEO_BINDER_MAX_WORKERS": "2", "PANGEO_BINDER_WORKER_CORES": "200m",
        "PANGEO_BINDER_WORKER_MEMORY": "768Mi", "PANGEO_BINDER_SESSION_CORES": "300m",
        "PANGEO_BINDER_SESSION_MEMORY": "1Gi", "PANGEO_BINDER_IDLE_TIMEOUT": "600",
    }
    install = subprocess.run([str(REPO_ROOT / "deploy/jupyterhub/install"),
                              result.stdout.strip()], capture_output=True, text=True,
                             env={**os.environ, **settings}, timeout=600, check=False)
    assert install.returncode == 0, install.stderr[-3000:]
    exports = dict(line.removeprefix("export ").split("=", 1)
                   for line in install.stdout.splitlines() if line.startswith("export "))
    return InstalledHub(exports["PANGEO_BINDER_HUB_URL"], exports["PANGEO_BINDER_HUB_TOKEN"],
                        exports.get("PANGEO_BINDER_HUB_PASSWORD"))


def remove_hub(launcher: Launcher) -> None:
    """Stop and delete every user of the hub, then the hub itself: what its namespace and
    RBAC leave is gone too."""
    from tests.helpers.k8s import kubectl, wait_until

    _, users = launcher.request("GET", "users")
    names = [user["name"] for user in users] if isinstance(users, list) else []
    for name in names:
        launcher.request("DELETE", f"users/{name}/server")
    wait_until(lambda: all(not launcher.request("GET", f"users/{n}")[1].get("servers")
                           for n in names), 180, "the hub's servers stopped")
    for name in names:
        launcher.request("DELETE", f"users/{name}")
    for namespace in hub_namespaces():  # should there be any left: a test failed
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    kubectl("delete", "namespace", HUB_NAMESPACE, "--wait=false", check=False)
    kubectl("delete", "clusterrolebinding,clusterrole", "pangeo-binder-hub", check=False)
    kubectl("delete", "clusterrole", "pangeo-binder-hub-session", check=False)


def hub_namespaces() -> list[str]:
    """The session namespaces the hub under test made (and not yet deleted)."""
    from tests.helpers.k8s import kubectl

    found = json.loads(kubectl("get", "namespaces", "-l", "pangeo-binder/user", "-o", "json"))
    return [ns["metadata"]["name"] for ns in found["items"]
            if ns["metadata"].get("annotations", {}).get("pangeo-binder/hub-account")
            == f"{HUB_NAMESPACE}:hub"]

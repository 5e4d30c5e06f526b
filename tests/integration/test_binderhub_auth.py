"""A badge click on a BinderHub with login ("auth enabled"), on the dev cluster.

The hub is deploy/jupyterhub with PANGEO_BINDER_HUB_AUTH=enabled, configured as the
BinderHub chart configures it with `auth_enabled: true` (BinderSpawner, the binder
service). Users log in through the hub's login form (a shared password stands in for the
OAuth provider, GitHub say, that cannot be reached here); BinderHub's launcher then starts
the logged-in user's server with a token of its own making, as binderhub_launcher.py does,
and the browser opens the link: the server lets in its owner through the hub's OAuth, and
nobody else, whatever token the link carries.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.helpers.binderhub_launcher import (
    Browser,
    Launcher,
    LaunchFailed,
    hub_namespaces,
    install_hub,
    opens_jupyterlab,
    remove_hub,
)
from tests.helpers.cli import EXAMPLES, TEST_PREFIX, run_cli
from tests.helpers.k8s import kubectl, wait_until

RUN = uuid.uuid4().hex[:6]
ADA, GRACE = f"ada-{RUN}", f"grace-{RUN}"


@pytest.fixture(scope="module")
def image(docker_engine, dev_cluster, local_registry) -> str:
    """examples/quickstart, built and pushed as a BinderHub build pod would."""
    registry = local_registry
    result = run_cli("build", str(EXAMPLES / "quickstart"), "--push",
                     "--image-prefix", f"{registry}/{TEST_PREFIX}binder-")
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


@pytest.fixture(scope="module")
def hub(image, local_registry) -> tuple[Launcher, str]:
    installed = install_hub(local_registry, auth=True)
    launcher = Launcher(installed.url, installed.api_token, auth_enabled=True)
    wait_until(lambda: launcher.request("GET", "")[0] == 200, 60, "the hub answers")
    yield launcher, installed.password
    remove_hub(launcher)


@pytest.fixture(scope="module")
def browsers(hub) -> dict[str, Browser]:
    launcher, password = hub
    browsers = {}
    for user in (ADA, GRACE):
        browsers[user] = Browser()
        browsers[user].log_in(launcher.hub_url, user, password)
    return browsers


def test_a_logged_in_users_click_opens_her_own_server_and_nobody_elses(hub, image,
                                                                        browsers):
    launcher, _ = hub
    launch = launcher.launch(image, ADA)
    link = f"{launch.url}?token={launch.token}"
    # Her browser, logged in to the hub, goes through the hub's OAuth to JupyterLab.
    page = browsers[ADA].get(link)
    assert opens_jupyterlab(page), (page.status, page.url, page.text[:300])
    # Another logged-in user with the same link is refused; a browser without login is
    # sent to the hub's login page.
    assert browsers[GRACE].get(link).status == 403
    stranger = Browser().get(link)
    assert not opens_jupyterlab(stranger) and "/hub/login" in stranger.url
    # The server is the hub-aware one; the session's Dask setup is the same as without
    # login: its own namespace, ServiceAccount, caps and Dask TLS credentials.
    pod = json.loads(kubectl("-n", f"pangeo-{ADA}", "get", "pods", "-l",
                             "component=singleuser-server", "-o", "json"))["items"][0]
    container = pod["spec"]["containers"][0]
    assert container["args"][0] == "jupyterhub-singleuser"
    assert pod["spec"]["serviceAccountName"] == f"pangeo-{ADA}"
    env = {e["name"]: e for e in container["env"]}
    assert env["DASK_KUBERNETES__NAMESPACE"]["value"] == f"pangeo-{ADA}"
    assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"]["value"] == "True"
    # A second click while her server runs is refused, as BinderHub's launcher does.
    with pytest.raises(LaunchFailed, match="already has a running server"):
        launcher.launch(image, ADA)


def test_her_session_namespace_goes_when_her_server_stops(hub):
    launcher, _ = hub
    assert launcher.request("DELETE", f"users/{ADA}/server")[0] in (202, 204)
    wait_until(lambda: f"pangeo-{ADA}" not in hub_namespaces(), 180,
               "Ada's namespace is gone")
    # The user stays (she logs in again), and her next click starts afresh.
    assert launcher.request("GET", f"users/{ADA}")[0] == 200

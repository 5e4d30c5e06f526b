"""Which server a hub spawn runs, by BinderHub's auth mode (pangeo_binder.hub.hooks)."""

from types import SimpleNamespace

import pytest

from pangeo_binder.hub.hooks import LaunchTokenError, server_command


def spawner(user_options: dict, **traits) -> SimpleNamespace:
    return SimpleNamespace(user_options=user_options, **traits)


def test_a_public_binder_runs_jupyterlab_with_the_launchers_token():
    # BinderSpawner puts user_options["token"] on the server's command line; only a
    # plain Jupyter server honours it.
    assert server_command(spawner({"token": "abc", "image": "x"}, auth_enabled=False)) \
        == ["jupyter-lab"]


def test_a_public_binder_refuses_a_spawn_without_a_launch_token():
    for options in ({}, {"token": ""}, {"image": "x"}):
        with pytest.raises(LaunchTokenError, match="launch token"):
            server_command(spawner(options, auth_enabled=False))


def test_a_hub_with_login_runs_the_hub_aware_server():
    assert server_command(spawner({"token": "abc"}, auth_enabled=True)) \
        == ["jupyterhub-singleuser"]
    # A plain KubeSpawner has no BinderSpawner trait: its users log in to the hub.
    assert server_command(spawner({})) == ["jupyterhub-singleuser"]

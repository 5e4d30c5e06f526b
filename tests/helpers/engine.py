"""What is on the Docker engine: running a command in an image, the containers and
images a test left, and where containers reach the host."""

from __future__ import annotations

import subprocess
import time

from tests.helpers.cli import TEST_PREFIX


def sh(engine, image: str, script: str) -> str:
    """The output of `script` run in `image`; it must succeed."""
    result = engine.run(image, ["sh", "-c", script])
    assert result.exit_code == 0, result.output
    return result.output


def containers(engine) -> set[str]:
    """The engine's containers, stopped ones too, except the dev cluster's (the kubelet
    runs its pods on the same engine, cri-dockerd names them k8s_...) and those of the
    other test workers' images (another prefix)."""
    ours = TEST_PREFIX.partition("/")[0]
    theirs = ours.rstrip("0123456789abcdef")  # pangeo-binder-test-
    return {c["Id"] for c in container_rows(engine)
            if not c["Names"][0].startswith("/k8s_")
            and not (theirs in (image := c["Image"]) and ours not in image)}


def container_rows(engine, **filters) -> list[dict]:
    """The engine's containers, stopped ones too, as one listing. docker-py's
    `containers.list` inspects each listed container after listing them all, and one
    that another test removes in between makes it raise, so the listing's own rows
    (Id, Names, Image, Labels) are what is read."""
    return engine.client.api.containers(all=True, filters=filters or None)


def assert_no_container_left(engine, before: set[str], settle: float = 900) -> None:
    """Nothing a command made is left: every container there now and not `before` goes
    away. Other tests run beside this one (scripts/test's two lanes), and their builds' throwaway
    containers (resolver sandboxes, smoke tests) come and go meanwhile, so a new one gets
    up to `settle` seconds (the sandbox's own time limit) to go; one left behind never
    does."""
    deadline = time.monotonic() + settle
    while new := containers(engine) - before:
        assert time.monotonic() < deadline, f"containers left behind: {sorted(new)}"
        time.sleep(2)


def bridge_address(engine) -> str:
    """The host's address on the engine's default bridge, where containers and builds
    reach a server the tests run on the host. Debian's engine (20.10) leaves the
    network's IPAM gateway out and puts it only on the bridge interface, so the
    interface is what is read, as the engine itself does."""
    options = engine.client.networks.get("bridge").attrs.get("Options") or {}
    interface = options.get("com.docker.network.bridge.name", "docker0")
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", interface],
                           capture_output=True, text=True, check=False).stdout.split()
    if "inet" not in shown:
        raise RuntimeError(f"the engine's bridge {interface} has no IPv4 address")
    return shown[shown.index("inet") + 1].partition("/")[0]


def images_named(engine, repository: str) -> list[str]:
    """The tags of `repository` on the engine (a candidate's too)."""
    return [t for image in engine.client.images.list() for t in image.tags
            if t.rpartition(":")[0] == repository]

"""`launch` and `stop` on the local Docker engine: the image runs as a JupyterLab
session on 127.0.0.1, where Dask defaults to a LocalCluster (Kubernetes sessions:
pangeo_binder.sessions.launch)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ..engine import Engine
from ..errors import PangeoBinderError
from ..events import Emit, Event, Phase
from ..kube import dns_name
from ..waiting import Waiting, wait_until


@dataclass(frozen=True)
class LocalSession:
    container: str
    image: str
    url: str  # with the token


def _local_name(image: str) -> str:
    return "pangeo-binder-" + dns_name(image.replace("/", "-").replace(":", "-"), 60)


def launch_local(image: str, engine: Engine, emit: Emit, timeout: float = 120) -> LocalSession:
    """Run `image` on the local engine (once: a second launch finds the first) and wait
    until JupyterLab answers."""
    import docker.errors
    import httpx

    name = _local_name(image)
    try:
        container = engine.client.containers.get(name)
        emit(Event(Phase.LAUNCHING, f"Found the running session {name}"))
    except docker.errors.NotFound:
        if engine.image_id(image) is None:
            raise PangeoBinderError(f"no image {image} on this machine; build it first") from None
        emit(Event(Phase.LAUNCHING, f"Starting {image}"))
        container = engine.client.containers.run(
            image, detach=True, name=name, ports={"8888/tcp": ("127.0.0.1", None)},
            environment={"JUPYTER_TOKEN": secrets.token_hex(16)},
            labels={"app.kubernetes.io/part-of": "pangeo-binder", "pangeo-binder/image": image},
        )
    token = next(v.split("=", 1)[1] for v in container.attrs["Config"]["Env"]
                 if v.startswith("JUPYTER_TOKEN="))

    def answering() -> str | Waiting:
        container.reload()
        if container.status in ("exited", "dead"):
            logs = container.logs(tail=5).decode(errors="replace").strip().splitlines()
            raise PangeoBinderError(f"the session exited: {(logs or ['no output'])[-1]}")
        ports = container.ports.get("8888/tcp") or []
        if ports:
            base = f"http://127.0.0.1:{ports[0]['HostPort']}"
            try:
                httpx.get(f"{base}/api", timeout=2).raise_for_status()
                return f"{base}/lab?token={token}"
            except httpx.HTTPError:  # not listening yet, or not answering yet
                pass
        return Waiting()

    try:
        # JupyterLab starts in about 2 s: every tenth of a second counts.
        url = wait_until(answering, timeout, every=0.1, timed_out=lambda _: PangeoBinderError(
            f"JupyterLab did not answer within {timeout:.0f}s"))
    except BaseException:
        container.remove(force=True)
        raise
    emit(Event(Phase.READY, f"JupyterLab is ready at {url}"))
    return LocalSession(container=name, image=image, url=url)


def stop_local(image: str, engine: Engine) -> bool:
    import docker.errors

    try:
        engine.client.containers.get(_local_name(image)).remove(force=True)
    except docker.errors.NotFound:
        return False
    return True

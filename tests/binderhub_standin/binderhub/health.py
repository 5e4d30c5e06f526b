"""Stand-in for binderhub.health: the handler pangeo-binder subclasses, with the
`settings` it reads, and the caching decorator BinderHub puts on `_get_pods`."""

from functools import wraps


def at_most_every(_f=None, *, interval=60):
    def caller(f):
        @wraps(f)
        async def wrapper(*args, **kwargs):
            return await f(*args, **kwargs)

        return wrapper

    return caller(_f) if _f is not None else caller


class KubernetesHealthHandler:
    def __init__(self, settings):
        self.settings = settings

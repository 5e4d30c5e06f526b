"""Makes a Python process one on a machine that reaches no name server (a build cluster
behind a firewall, a resolver that is down): Python loads this module at start when its
directory is on PYTHONPATH (`offline_env` in tests/helpers/cli.py). Every name
lookup but loopback's fails as DNS does, and the name is appended to the file
PANGEO_BINDER_TEST_OFFLINE_LOG, so a test can say which hosts a process tried to reach.
(Programs it starts, git, docker, are not Python: they are given loopback sources.)"""

import os
import socket

_LOOPBACK = {None, "localhost", "127.0.0.1", "::1"}
_getaddrinfo = socket.getaddrinfo


def _no_dns(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name in _LOOPBACK:
        return _getaddrinfo(host, *args, **kwargs)
    with open(os.environ["PANGEO_BINDER_TEST_OFFLINE_LOG"], "a") as log:
        log.write(f"{name}\n")
    raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


socket.getaddrinfo = _no_dns

"""A Dask nanny preload: wait for the scheduler, asking every tenth of a second.

A nanny registers with its scheduler before it starts its worker. On Kubernetes, the
worker pods start beside the scheduler's and are often ready first; distributed's
connect then retries with exponential backoff and jitter, which on a busy node left
workers idle for several seconds after their scheduler was listening. This preload
(`distributed.nanny.preload`, set in the image's Dask configuration) tries the
scheduler at a steady pace first, so the nanny's own connect succeeds at once. Where the
scheduler never answers, it gives up after the connect timeout and the nanny's own
connect reports why.
"""

from __future__ import annotations

import asyncio
import time


async def dask_setup(nanny) -> None:
    import dask.config
    from distributed.comm import connect
    from distributed.utils import parse_timedelta

    limit = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            comm = await connect(nanny.scheduler.addr, timeout=0.5, **nanny.connection_args)
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.1)
            continue
        await comm.close()
        return

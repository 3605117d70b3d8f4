"""Running the portal: `examflow portal serve` (uvicorn, N workers) and, in-process, for
`examflow up` and tests (one uvicorn server on a thread)."""

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from examflow.settings import Settings
from portal.app import create_app

START_TIMEOUT_S = 30


def serve(host: str, port: int, workers: int = 1, as_of: str | None = None) -> None:
    """Serve until interrupted. Workers build the app from the environment, so the rehearsal
    clock travels as EXAMFLOW_PORTAL_AS_OF."""
    if as_of is not None:
        os.environ["EXAMFLOW_PORTAL_AS_OF"] = as_of
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(
        "portal.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # its lines carry query strings (tokens): portal.access logs instead
        proxy_headers=True,
        log_config=None,
    )


@contextmanager
def portal_server(settings: Settings, port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
    """The portal on a thread of this process until exit; yields its base URL (port 0: a free
    port, as the URL says)."""
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="portal-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the portal did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

"""Serve an ASGI app with uvicorn on a background thread, beside the pipeline."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI


class HttpServer:
    """uvicorn in a daemon thread; :attr:`port` is the port it bound; :meth:`stop` ends it."""

    def __init__(self, app: FastAPI, host: str, port: int, *, start_timeout_s: float = 10.0):
        # log_config=None: keep the process's structlog handlers (stream_core.logs).
        config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off")
        self._server = uvicorn.Server(config)
        # uvicorn installs signal handlers only on the main thread; the pipeline owns those.
        self._thread = threading.Thread(target=self._serve, name="http-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"HTTP API could not listen on {host}:{port}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"HTTP API did not start on {host}:{port} in time")
            time.sleep(0.02)
        self.host = host
        self.port: int = self._server.servers[0].sockets[0].getsockname()[1]

    def _serve(self) -> None:
        try:
            self._server.run()
        except SystemExit:  # uvicorn exits when it cannot bind; it has logged why
            return

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def stop(self, timeout_s: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout_s)

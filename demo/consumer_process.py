"""The consumer, run as a child process (``python -m sentiment_stream consume``) for the demo."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from consumer.settings import Settings
from demo.services import Services
from embedded.process import ChildProcess, free_port

# The project root, so the child imports this same code when it runs from a checkout.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


# A 10 s window judges a spike within seconds, and the spiked entity (demo/watchlist.py: about
# 6 posts a second) is judged on 20 posts in its window and a baseline of 50 before its spike;
# the monitoring jobs look every 5 s;
# everything else keeps the service defaults.
DEMO_DETECTOR = {
    "SENTIMENT_ALERT_WINDOW_S": "10",
    "SENTIMENT_ALERT_COOLDOWN_S": "30",
    "SENTIMENT_WATCH_ALERT_MIN_VOLUME": "20",
    "SENTIMENT_WATCH_ALERT_BASELINE_MIN_VOLUME": "50",
    "SENTIMENT_MONITOR_INTERVAL_S": "5",
}


def consumer_env(settings: Settings, services: Services, http_port: int) -> dict[str, str]:
    """The child's environment: ours, with the services, topic, model and port filled in."""
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": services.bootstrap_servers,
            "DATABASE_URL": services.database_url,
            "SENTIMENT_TOPIC": settings.topic,
            "SENTIMENT_GROUP_ID": settings.group_id,
            "SENTIMENT_MODEL": str(settings.model),
            "SENTIMENT_MODELS_DIR": str(settings.models_dir),
            "SENTIMENT_HTTP_HOST": "127.0.0.1",
            "SENTIMENT_HTTP_PORT": str(http_port),
            "SENTIMENT_LOG_FORMAT": "json",
            "SENTIMENT_LOG_LEVEL": settings.log_level,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
            ),
            "PYTHONUNBUFFERED": "1",
        }
    )
    # Short-demo detector settings, unless the user chose their own (see docs/demo.md).
    for name, value in DEMO_DETECTOR.items():
        env.setdefault(name, value)
    if "broker" in services.embedded_pids:
        # tansu answers JoinGroup only after session.timeout.ms / 2: 3 s instead of 22 s.
        env.setdefault("KAFKA_SESSION_TIMEOUT_MS", "6000")
    return env


class ConsumerProcess:
    """``sentiment-stream consume`` with its HTTP API on a free loopback port."""

    def __init__(self, settings: Settings, services: Services, log_path: Path) -> None:
        self.http_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self._child = ChildProcess(
            [sys.executable, "-m", "sentiment_stream", "consume"],
            log_path,
            env=consumer_env(settings, services, self.http_port),
        )

    @property
    def pid(self) -> int:
        return self._child.pid

    @property
    def metrics_url(self) -> str:
        return f"{self.base_url}/metrics"

    @property
    def docs_url(self) -> str:
        return f"{self.base_url}/docs"

    def alive(self) -> bool:
        return self._child.process.poll() is None

    def wait_ready(self, timeout_s: float, stop: threading.Event) -> None:
        """Block until /ready answers 200 (model loaded, database up, partitions assigned)."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline and not stop.is_set():
            if not self.alive():
                raise RuntimeError(
                    f"the consumer exited with code {self._child.process.returncode}:\n"
                    f"{self._child.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/ready", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as error:
                last = json.loads(error.read() or b"{}").get("missing", error.reason)
            except OSError as error:
                last = str(error)
            stop.wait(0.5)
        if stop.is_set():
            return
        raise TimeoutError(f"the consumer was not ready within {timeout_s:.0f}s: {last}")

    def log_tail(self) -> str:
        return self._child.log_tail()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (it drains its batch and commits), SIGKILL after ``timeout_s``."""
        self._child.stop(signal.SIGTERM, timeout_s)
        return self._child.process.returncode

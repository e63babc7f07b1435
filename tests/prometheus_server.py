"""A real Prometheus server (Debian package ``prometheus``) on a free loopback port, for tests."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from embedded.process import ChildProcess, free_port, wait_for_port

JOB = "sentiment-stream"


@contextmanager
def prometheus_scraping(target: str, workdir: Path) -> Iterator[str]:
    """Prometheus scraping ``host:port`` every second; yields its base URL; stopped on exit."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(
            "prometheus is not installed (Debian package `prometheus`; .ci/run installs it)"
        )
    config = workdir / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
            }
        )
    )
    port = free_port()
    server = ChildProcess(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        workdir / "prometheus.log",
    )
    try:
        wait_for_port("127.0.0.1", port, 60, server.process)
        yield f"http://127.0.0.1:{port}"
    except BaseException:
        print(server.log_tail())
        raise
    finally:
        server.stop()


def instant_query(base: str, query: str) -> list[dict[str, Any]]:
    """The result vector of a PromQL instant query."""
    body = httpx.get(f"{base}/api/v1/query", params={"query": query}, timeout=5).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_for_labelled_values(
    base: str, query: str, label: str, expected: dict[str, float], timeout_s: float = 60
) -> None:
    """Poll ``query`` until its samples, keyed by ``label``, equal ``expected``."""
    deadline = time.monotonic() + timeout_s
    got: dict[str, float] = {}
    while got != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        got = {r["metric"][label]: float(r["value"][1]) for r in instant_query(base, query)}
    assert got == expected, f"{query} gave {got}"


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of ``url/metrics``, keyed by (name, sorted labels)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def rise(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)

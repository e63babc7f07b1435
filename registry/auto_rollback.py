"""Automated rollback (opt-in, ``SENTIMENT_AUTO_ROLLBACK``): one elected replica judges the
active version against the one it replaced, on gold labels, and rolls back when it is worse.

The active version is judged on the labels that arrived since it became active; the version it
replaced on the labels that arrived for its posts over the same span before and after (its
posts still get late labels). Once both have at least ``min_labelled`` labelled posts and the
new version's online macro recall is below the old one's by more than ``margin``, the job rolls
back (an audit row by ``auto-rollback``), writes an alert row of kind ``model_rollback`` and
calls ``on_rollback`` (the consumer counts it in Prometheus). Every replica follows the
rollback like any other (NOTIFY).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from psycopg.types.json import Jsonb

from registry.store import ModelRegistry, RegistryError
from storage import model_registry as sql
from storage.alerts import insert_alert, resolve_alert
from storage.quality import online_quality

log = structlog.get_logger(__name__)

ROLE = "model-auto-rollback"  # the advisory lock's name: one judge in the fleet
ACTOR = "auto-rollback"
ALERT_KIND = "model_rollback"


@dataclass(frozen=True)
class RollbackPolicy:
    margin: float = 0.05  # of macro recall
    min_labelled: int = 200  # labelled posts each version needs before it is judged


@dataclass(frozen=True)
class Verdict:
    active: str
    previous: str
    active_recall: float
    previous_recall: float
    active_labelled: int
    previous_labelled: int

    def worse_by(self) -> float:
        return self.previous_recall - self.active_recall


def judge(
    conn: psycopg.Connection[Any], policy: RollbackPolicy, now: datetime | None = None
) -> Verdict | None:
    """The active version against the one it replaced; None while either lacks labels (or no
    version was replaced)."""
    active = sql.version_with_status(conn, "active")
    if active is None or active["previous_version"] is None:
        return None
    now = now or datetime.now(UTC)
    activated: datetime = active["status_at"]
    new = online_quality(conn, active["version"], since=activated, until=now)
    old = online_quality(conn, active["previous_version"], since=activated - (now - activated))
    if min(new.total, old.total) < policy.min_labelled:
        return None
    return Verdict(
        active["version"],
        active["previous_version"],
        float(new.macro_recall),
        float(old.macro_recall),
        new.total,
        old.total,
    )


class AutoRollback:
    """The elected job (``storage.coordination.ElectedJobs``): ``run(conn)`` judges and, when
    the active version is worse by more than the margin, rolls back."""

    def __init__(
        self,
        registry: ModelRegistry,
        policy: RollbackPolicy,
        on_rollback: Callable[[Verdict], None] | None = None,
    ) -> None:
        self._registry = registry
        self._policy = policy
        self._on_rollback = on_rollback

    def run(self, conn: psycopg.Connection[Any]) -> None:
        verdict = judge(conn, self._policy)
        if verdict is None or verdict.worse_by() <= self._policy.margin:
            return
        reason = (
            f"online macro recall {verdict.active_recall:.4f} on {verdict.active_labelled}"
            f" labelled posts, {verdict.previous_recall:.4f} for {verdict.previous} on"
            f" {verdict.previous_labelled}: worse by more than {self._policy.margin:g}"
        )
        try:
            self._registry.rollback(reason=reason, actor=ACTOR, only_if_active=verdict.active)
        except RegistryError as error:  # someone changed the registry meanwhile
            log.info("automated rollback not needed any more", reason=str(error))
            return
        log.warning("model rolled back automatically", version=verdict.active, reason=reason)
        _alert(conn, verdict, reason, self._policy)
        if self._on_rollback is not None:
            self._on_rollback(verdict)


def _alert(
    conn: psycopg.Connection[Any], verdict: Verdict, reason: str, policy: RollbackPolicy
) -> None:
    """A closed alert row (one event, not a state that clears)."""
    now = datetime.now(UTC)
    alert_id = uuid.uuid4()
    insert_alert(
        conn,
        {
            "id": alert_id,
            "kind": ALERT_KIND,
            "entity": None,
            "detected_at": now,
            "window_start": now,
            "window_end": now,
            "negative_share": 0.0,
            "baseline_share": 0.0,
            "volume": verdict.active_labelled,
            "zscore": 0.0,
            "peak_share": 0.0,
            "model_version": verdict.active,
            "details": Jsonb(
                {
                    "reason": reason,
                    "rolled_back": verdict.active,
                    "restored": verdict.previous,
                    "macro_recall": verdict.active_recall,
                    "previous_macro_recall": verdict.previous_recall,
                    "margin": policy.margin,
                }
            ),
        },
    )
    resolve_alert(conn, alert_id, now, 0.0)

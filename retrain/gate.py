"""The gate: a candidate is promoted only when it beats the active version, by a margin, on the
same held-out posts; without an active version to beat, or without a margin asked for, never."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GateDecision:
    candidate: float  # macro recall on the held-out posts
    active: float | None  # the active version's, on the same posts; None: no active version
    margin: float | None  # --promote-if-better; None: promotion not asked for
    promote: bool
    reason: str

    def document(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    candidate: float, active: float | None, margin: float | None, on: str = "the held-out posts"
) -> GateDecision:
    """Whether the candidate is promoted, and why (in words for the registry's audit trail);
    ``on``: what both figures were measured on."""
    figures = f"candidate {candidate:.4f}" + (
        f" vs active {active:.4f}" if active is not None else ""
    )
    if margin is None:
        return GateDecision(candidate, active, margin, False, f"{figures}: promotion not asked for")
    if active is None:
        return GateDecision(
            candidate, active, margin, False, f"{figures}: no active version to beat"
        )
    gain = candidate - active
    promote = gain > 0 and gain >= margin
    verdict = "beats" if promote else "does not beat"
    reason = f"{figures} macro recall on {on}: {verdict} it by the margin {margin:g}"
    return GateDecision(candidate, active, margin, promote, reason)

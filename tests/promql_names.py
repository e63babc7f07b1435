"""Metric names in PromQL expressions, and the names the service exports (for config tests)."""

from __future__ import annotations

import re

from observability.metrics import PipelineMetrics

KEYWORDS = {
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
}
# Series Prometheus itself makes for every target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*(?![\w(])(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """Every metric an expression selects (functions, keywords and label names left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery selectors
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name not in KEYWORDS}


def exported_names(metrics: PipelineMetrics | None = None) -> set[str]:
    """Sample names the service's registry exposes, with their _total/_bucket/... suffixes."""
    registry = (metrics or PipelineMetrics()).registry
    names: set[str] = set()
    for family in registry.collect():
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("", "_count", "_sum", "_created"),
            "info": ("_info",),
            "gauge": ("",),
        }[family.type]
        names.update(family.name + suffix for suffix in suffixes)
    return names

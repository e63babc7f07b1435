"""Every SQL query of the Grafana dashboards runs against the migrated schema and gives what
it should."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from storage.migrate import upgrade
from storage.rollups import refresh
from storage.urls import libpq_url
from tests.fixtures.monitoring import dashboard_targets, dashboard_variables

FROM_TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


TO_TS = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


def grafana_sql(query: str, from_ts: datetime = FROM_TS) -> str:
    """Expand the Grafana PostgreSQL macros the dashboard uses into concrete SQL (the range
    from ``from_ts`` to TO_TS)."""
    span = f"'{from_ts.isoformat()}' AND '{TO_TS.isoformat()}'"
    expanded = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN {span}", query)
    expanded = expanded.replace("$__timeFrom()", f"'{from_ts.isoformat()}'")
    expanded = expanded.replace("$__timeTo()", f"'{TO_TS.isoformat()}'")
    expanded = expanded.replace("$entity", "acme")  # the dashboard's entity variable
    assert "$" not in expanded, f"unexpanded Grafana macro in {query!r}"
    return expanded


@pytest.mark.integration
def test_dashboard_sql_runs_against_the_migrated_schema(database_url: str) -> None:
    upgrade(database_url)
    targets = dashboard_targets("grafana-postgresql-datasource")
    assert len(targets) >= 4
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute(
            "INSERT INTO sentiment_minute_counts (minute, label, count) VALUES "
            "(%(m)s, 'negative', 3), (%(m)s, 'neutral', 5), (%(m)s, 'positive', 2)",
            {"m": FROM_TS.replace(minute=30)},
        )
        conn.execute("INSERT INTO watch_entities (name, keywords) VALUES ('acme', ARRAY['acme'])")
        conn.execute(
            "INSERT INTO sentiment_entity_minute_counts (entity, minute, label, count) VALUES "
            "('acme', %(m)s, 'negative', 4), ('acme', %(m)s, 'positive', 1),"
            " ('other', %(m)s, 'neutral', 7)",
            {"m": FROM_TS.replace(minute=30)},
        )
        conn.execute(
            "INSERT INTO sentiment_alerts (id, kind, detected_at, window_start, window_end, "
            "negative_share, baseline_share, peak_share, volume, zscore, model_version) VALUES "
            "(gen_random_uuid(), 'negative_spike', %(t)s, %(t)s, %(t)s, 0.6, 0.2, 0.7, 500, 9.5, "
            "'v1')",
            {"t": FROM_TS.replace(minute=31)},
        )
        conn.execute(
            "INSERT INTO language_minute_counts (minute, lang, status, count) VALUES "
            "(%(m)s, 'en', 'scored', 6), (%(m)s, 'es', 'unscored', 3), (%(m)s, 'und', 'scored', 1)",
            {"m": FROM_TS.replace(minute=30)},
        )
        conn.execute(
            "INSERT INTO scored_posts (post_id, text, label, prob_negative, prob_neutral,"
            " prob_positive, model_version, kafka_topic, kafka_partition, kafka_offset,"
            " gold_label, gold_label_at) VALUES ('p1', 't', 'negative', 0.6, 0.3, 0.1, 'v1',"
            " 'posts', 0, 1, 'negative', %(t)s), ('p2', 't', 'neutral', 0.2, 0.5, 0.3, 'v1',"
            " 'posts', 0, 2, 'negative', %(t)s), ('p3', 't', 'positive', 0.1, 0.2, 0.7, 'v1',"
            " 'posts', 0, 3, 'positive', %(t)s)",
            {"t": FROM_TS.replace(minute=32)},
        )
        conn.execute(
            "INSERT INTO drift_reports (computed_at, model_version, time_window, window_start,"
            " window_end, feature, psi, js_distance, online_posts, reference_posts, details)"
            " VALUES (%(t)s, 'v1', '15m', %(t)s, %(t)s, 'has_emoji', 0.9, 0.4, 300, 2000, '{}')",
            {"t": FROM_TS.replace(minute=33)},
        )
        for target in targets:
            rows = conn.execute(grafana_sql(target["rawSql"])).fetchall()
            assert rows, target["rawSql"]
        # The entity variable lists the watchlist; the entity panels count only its posts.
        for variable in dashboard_variables("grafana-postgresql-datasource"):
            assert conn.execute(variable["query"]).fetchall() == [("acme",)]
        entity_sql = [t["rawSql"] for t in targets if "'$entity'" in t["rawSql"]]
        assert len(entity_sql) == 2
        for query in entity_sql:
            rows = conn.execute(grafana_sql(query)).fetchall()
            assert {(label, float(value)) for _, label, value in rows} in (
                {("negative", 80.0), ("positive", 20.0)},  # the share
                {("negative", 4.0), ("positive", 1.0)},  # the posts
            )
        quality_sql = next(t["rawSql"] for t in targets if "gold_label_at" in t["rawSql"])
        # Recall 1/2 for negative, 1/1 for positive: macro recall 0.75, as storage.quality says.
        assert [(v, float(r)) for _, v, r in conn.execute(grafana_sql(quality_sql))] == [
            ("v1", 0.75)
        ]
        mix_sql = next(t["rawSql"] for t in targets if "OVER (PARTITION BY bucket)" in t["rawSql"])
        mix = conn.execute(grafana_sql(mix_sql)).fetchall()
        assert [(label, float(share)) for _, label, share in mix] == [
            ("negative", 30.0),
            ("neutral", 50.0),
            ("positive", 20.0),
        ]
        languages_sql = next(t["rawSql"] for t in targets if "language_" in t["rawSql"])
        languages = conn.execute(grafana_sql(languages_sql)).fetchall()
        assert [
            (lang, posts, unscored, float(share)) for lang, posts, unscored, share in languages
        ] == [
            ("en", 6, None, 60.0),
            ("es", 3, 3, 30.0),
            ("und", 1, None, 10.0),
        ]
        # A week reads the hourly counts, a quarter the daily ones (once refreshed).
        refresh(conn, FROM_TS - timedelta(days=1))
        conn.commit()
        for days, resolution in ((7, "hour"), (90, "day")):
            wide = grafana_sql(mix_sql, TO_TS - timedelta(days=days))
            assert conn.execute(wide).fetchall() == [
                (
                    FROM_TS.replace(minute=0) if resolution == "hour" else FROM_TS.replace(hour=0),
                    label,
                    share,
                )
                for label, share in (("negative", 30), ("neutral", 50), ("positive", 20))
            ], resolution

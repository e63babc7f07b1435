"""Languages: each post's language, where it came from, and whether a model read it; exact
posts per language per minute, with hourly and daily rollups.

The new ``scored_posts`` columns reach every partition (PostgreSQL adds a column of a
partitioned table to each of its partitions), and its label, probabilities and model version
may now be NULL: an unscored post has none. Rows stored before this revision keep NULL in
them: nothing said then whether their language was read.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations.rollups import add_rollups, drop_rollups

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATUS_CHECK = "status IN ('scored', 'unscored')"
# What an unscored post has none of.
SCORE_COLUMNS = ("label", "prob_negative", "prob_neutral", "prob_positive", "model_version")


def upgrade() -> None:
    for column in SCORE_COLUMNS:
        op.alter_column("scored_posts", column, nullable=True)
    op.add_column("scored_posts", sa.Column("lang_source", sa.Text))
    op.add_column("scored_posts", sa.Column("lang_confidence", sa.REAL))
    op.add_column("scored_posts", sa.Column("status", sa.Text))
    op.add_column("scored_posts", sa.Column("unscored_reason", sa.Text))
    op.create_check_constraint(
        "ck_scored_posts_lang_source", "scored_posts", "lang_source IN ('message', 'detected')"
    )
    op.create_check_constraint("ck_scored_posts_status", "scored_posts", STATUS_CHECK)
    # An unscored post says why and has no label; a scored one has its label.
    op.create_check_constraint(
        "ck_scored_posts_unscored_reason",
        "scored_posts",
        "status IS NULL OR (status = 'unscored') = (unscored_reason IS NOT NULL AND label IS NULL)",
    )

    # Posts per UTC minute, language ('und': undetermined) and status, exact under replays
    # (storage.language_counts.LanguageMinuteCounts).
    op.create_table(
        "language_minute_counts",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lang", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("minute", "lang", "status", name="pk_language_minute_counts"),
        sa.CheckConstraint(STATUS_CHECK, name="ck_language_minute_counts_status"),
    )
    add_rollups("language_minute_counts")  # language_hour_counts, language_day_counts


def downgrade() -> None:
    drop_rollups("language_minute_counts")
    op.drop_table("language_minute_counts")
    for name in ("unscored_reason", "status", "lang_source"):
        op.drop_constraint(f"ck_scored_posts_{name}", "scored_posts", type_="check")
    # The older schema cannot hold a post without a label: unscored posts are dropped.
    op.execute("DELETE FROM scored_posts WHERE label IS NULL")
    for column in ("unscored_reason", "status", "lang_confidence", "lang_source"):
        op.drop_column("scored_posts", column)
    for column in SCORE_COLUMNS:
        op.alter_column("scored_posts", column, nullable=False)

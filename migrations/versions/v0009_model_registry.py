"""The model registry: versions and their status, their files (chunked, sha256-verified, each
file stored once), an audit row for every change of status, and the shadow version's scores.

Any change to ``model_versions`` NOTIFYs ``sentiment_models`` at commit (a trigger, so plain SQL
edits count too); every consumer follows the active version from there.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.partitioning import register_partitioned, unregister_partitioned

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
LABEL_CHECK = "IN ('negative', 'neutral', 'positive')"
SHA256_CHECK = "~ '^[0-9a-f]{64}$'"
STATUSES = "('registered', 'shadow', 'active', 'retired')"
# storage.model_registry.CHANNEL: every replica LISTENs on it (storage.coordination).
NOTIFY_FUNCTION = """
CREATE FUNCTION model_versions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sentiment_models', '');
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    # One stored file's bytes, whatever version or path it belongs to (content-addressed).
    op.create_table(
        "model_blobs",
        sa.Column("sha256", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.CheckConstraint(f"sha256 {SHA256_CHECK}", name="ck_model_blobs_sha256"),
        sa.CheckConstraint("size >= 0 AND chunks >= 0", name="ck_model_blobs_size"),
    )
    op.create_table(
        "model_blob_chunks",
        sa.Column(
            "blob_sha256",
            sa.Text,
            sa.ForeignKey("model_blobs.sha256", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("blob_sha256", "seq", name="pk_model_blob_chunks"),
        sa.CheckConstraint(f"sha256 {SHA256_CHECK}", name="ck_model_blob_chunks_sha256"),
    )
    # The files travel as they are: no need for the database to compress ONNX weights again.
    op.execute("ALTER TABLE model_blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL")

    op.create_table(
        "model_versions",
        sa.Column("version", sa.Text, primary_key=True),
        # Of the folder's manifest (path, size, sha256 of every file): same folder, same digest.
        sa.Column("sha256", sa.Text, nullable=False, unique=True),
        sa.Column("status", sa.Text, nullable=False, server_default="registered"),
        sa.Column("metadata", postgresql.JSONB, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("registered_by", sa.Text, nullable=False),
        sa.Column("registered_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("status_by", sa.Text, nullable=False),
        sa.Column("status_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("status_at", TZ, nullable=False, server_default=sa.func.now()),
        # The version that was active when this one was promoted: what `rollback` returns to.
        sa.Column("previous_version", sa.Text, sa.ForeignKey("model_versions.version")),
        sa.Column("shadow_sample", sa.Float, nullable=False, server_default="1.0"),
        sa.CheckConstraint(f"status IN {STATUSES}", name="ck_model_versions_status"),
        sa.CheckConstraint(f"sha256 {SHA256_CHECK}", name="ck_model_versions_sha256"),
        sa.CheckConstraint(
            "shadow_sample > 0 AND shadow_sample <= 1", name="ck_model_versions_shadow_sample"
        ),
    )
    # At most one active and one shadow version, whoever writes.
    for status in ("active", "shadow"):
        op.create_index(
            f"uq_model_versions_one_{status}",
            "model_versions",
            ["status"],
            unique=True,
            postgresql_where=sa.text(f"status = '{status}'"),
        )
    op.create_table(
        "model_files",
        sa.Column(
            "version",
            sa.Text,
            sa.ForeignKey("model_versions.version", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("blob_sha256", sa.Text, sa.ForeignKey("model_blobs.sha256"), nullable=False),
        sa.PrimaryKeyConstraint("version", "path", name="pk_model_files"),
    )
    op.create_table(
        "model_audit",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("from_status", sa.Text),
        sa.Column("to_status", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_model_audit_at", "model_audit", ["at"])
    op.execute(NOTIFY_FUNCTION)
    op.execute(
        "CREATE TRIGGER model_versions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
        " ON model_versions FOR EACH STATEMENT EXECUTE FUNCTION model_versions_notify()"
    )

    # What the shadow version said of a post the active version scored, beside what the active
    # one said. Keyed and partitioned like scored_posts (its Kafka position and time column),
    # so it is created ahead and expired with the posts; one row per post and shadow version.
    op.create_table(
        "shadow_scores",
        sa.Column("kafka_topic", sa.Text, nullable=False),
        sa.Column("kafka_partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("kafka_timestamp", TZ),
        sa.Column("post_id", sa.Text, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("prob_negative", sa.Float(precision=24), nullable=False),
        sa.Column("prob_neutral", sa.Float(precision=24), nullable=False),
        sa.Column("prob_positive", sa.Float(precision=24), nullable=False),
        sa.Column("active_version", sa.Text, nullable=False),
        sa.Column("active_label", sa.Text, nullable=False),
        sa.Column("scored_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint(
            "kafka_topic",
            "kafka_partition",
            "kafka_offset",
            "kafka_timestamp",
            "model_version",
            name="uq_shadow_scores",
            postgresql_nulls_not_distinct=True,
        ),
        sa.CheckConstraint(f"label {LABEL_CHECK}", name="ck_shadow_scores_label"),
        sa.CheckConstraint(f"active_label {LABEL_CHECK}", name="ck_shadow_scores_active_label"),
        postgresql_partition_by="RANGE (kafka_timestamp)",
    )
    op.create_index(
        "ix_shadow_scores_version_time", "shadow_scores", ["model_version", "scored_at"]
    )
    register_partitioned("shadow_scores")


def downgrade() -> None:
    unregister_partitioned("shadow_scores")
    op.drop_table("shadow_scores")
    op.drop_table("model_audit")
    op.drop_table("model_files")
    op.drop_table("model_versions")
    op.execute("DROP FUNCTION model_versions_notify()")
    op.drop_table("model_blob_chunks")
    op.drop_table("model_blobs")

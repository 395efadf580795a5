"""A read model: one summary row per instance, so read commands need not fold the stream;
and an index for history windows (counting rules revisions, finding the link in effect).

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "summaries",
        sa.Column("stream", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
    )
    op.create_index("ix_events_stream_type_version", "events", ["stream", "type", "version"])


def downgrade() -> None:
    op.drop_index("ix_events_stream_type_version", "events")
    op.drop_table("summaries")

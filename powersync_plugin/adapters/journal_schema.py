"""The journal's table, defined once for SQLAlchemy (writes) and Alembic (migrations)."""
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()
events_table = Table(
    "events",
    metadata,
    Column("sequence", Integer, primary_key=True, autoincrement=True),
    Column("stream", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("schema", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("command", Text, nullable=False),
    UniqueConstraint("stream", "version", name="uq_events_stream_version"),
    Index("ix_events_type", "type"),
    Index("ix_events_stream_type_version", "stream", "type", "version"),
)

# A read model rebuilt from the events at will: the summary a read command shows, as of `version`.
summaries_table = Table(
    "summaries",
    metadata,
    Column("stream", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("summary", Text, nullable=False),
)

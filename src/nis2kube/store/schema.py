"""Tables. `incident_events`, `alerts` and `evidence_blobs` are append-only (database triggers refuse UPDATE and
DELETE);
`incidents` is a projection of the events, kept in the same transaction, for fast listing and dedup.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

metadata = MetaData()


class UTCDateTime(TypeDecorator):
    """Stored as naive UTC (same on SQLite and PostgreSQL), returned timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# BigInteger ids autoincrement on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
_ID = BigInteger().with_variant(Integer(), "sqlite")

incident_events = Table(
    "incident_events", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("incident_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", String(32), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("data", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("incident_id", "seq", name="uq_incident_events_incident_seq"),
)

incidents = Table(
    "incidents", metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("is_open", Boolean, nullable=False),
    Column("dedup_key", String(1024)),
    Column("last_alert_at", UTCDateTime),
    Column("version", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),  # head of the hash chain, saves a query per append
    Column("state", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_incidents_open_dedup", "is_open", "dedup_key"),
)

alerts = Table(
    "alerts", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("source", String(32), nullable=False),
    Column("rule", String(512), nullable=False),
    Column("priority", String(32), nullable=False),
    Column("workload", String(512), nullable=False),
    Column("incident_id", String(64)),
    Column("record", Text, nullable=False),
    Column("status", String(16)),  # firing | resolved (NULL: stored before revision 0003)
    Column("occurrence_key", String(256)),  # Alert.occurrence_key: equal for every copy of one alert
    Column("repeat_of", _ID),  # id of the first stored copy when this row is a re-send of it
    Index("ix_alerts_occurrence_key", "occurrence_key", "id"),  # newest copy of an alert: one probe
)

evidence_blobs = Table(
    "evidence_blobs", metadata,
    Column("sha256", String(64), primary_key=True),  # content-addressed: one row per distinct file
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("stored_at", UTCDateTime, nullable=False),
)

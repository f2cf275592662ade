"""Times to the microsecond on MySQL/MariaDB (DATETIME(6)); SQLite already keeps them.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (table, column, nullable) of every time column, as the earlier revisions made them.
COLUMNS = [
    ("labs", "last_seen_at", True),
    ("users", "locked_until", True),
    ("users", "created_at", False),
    ("reactions", "created_at", False),
    ("requests", "created_at", False),
    ("requests", "started_at", True),
    ("requests", "finished_at", True),
    ("requests", "heartbeat_at", True),
    ("request_shares", "created_at", True),
    ("experiments", "started_at", False),
    ("experiments", "finished_at", True),
    ("hardware_commands", "sent_at", False),
    ("spectra", "created_at", False),
]


def _alter(new: sa.types.TypeEngine, old: sa.types.TypeEngine) -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return  # SQLite stores the microseconds in its text already
    for table, column, nullable in COLUMNS:
        op.alter_column(table, column, type_=new, existing_type=old, existing_nullable=nullable)


def upgrade() -> None:
    _alter(mysql.DATETIME(fsp=6), sa.DateTime())


def downgrade() -> None:
    _alter(sa.DateTime(), mysql.DATETIME(fsp=6))

"""Points a request runs before (or instead of) its optimizer, and who chose each experiment.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("chosen_by", sa.String(80), nullable=True))
        batch.add_column(sa.Column("replicate_of", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_experiments_replicate_of", "experiments", ["replicate_of"], ["id"]
        )
        batch.create_index("ix_experiments_replicate_of", ["replicate_of"])
    op.create_table(
        "planned_points",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("chosen_by", sa.String(80), nullable=False),
        sa.Column("replicate_of", sa.Integer(), sa.ForeignKey("experiments.id"), nullable=True),
        sa.Column("experiment_id", sa.Integer(), sa.ForeignKey("experiments.id"), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index(
        "ix_planned_points_request_position", "planned_points", ["request_id", "position"]
    )


def downgrade() -> None:
    op.drop_index("ix_planned_points_request_position", table_name="planned_points")
    op.drop_table("planned_points")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_index("ix_experiments_replicate_of")
        batch.drop_constraint("fk_experiments_replicate_of", type_="foreignkey")
        batch.drop_column("replicate_of")
        batch.drop_column("chosen_by")

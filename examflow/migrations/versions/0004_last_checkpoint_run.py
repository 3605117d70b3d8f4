"""Each stage's last checkpoint run (the ops console's overview and self-clearing stalls).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lastcheckpointrun",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("stage", AutoString(), nullable=False),
        sa.Column("checkpoint", AutoString(), nullable=False),
        sa.Column("state", AutoString(), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.Column("flow_run_id", AutoString(), nullable=True),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("sitting_code", "stage"),
    )


def downgrade() -> None:
    op.drop_table("lastcheckpointrun")

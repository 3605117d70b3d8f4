"""The exam's go/no-go decisions per site (who decided, when, why, through what).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gonogodecision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("site_code", AutoString(), nullable=False),
        sa.Column("choice", AutoString(), nullable=False),
        sa.Column("reason", AutoString(), nullable=False),
        sa.Column("note", AutoString(), nullable=False),
        sa.Column("decided_by", AutoString(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.Column("via", AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["site_code"], ["school.code"]),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("site_code", "sitting_code"):
        op.create_index(op.f(f"ix_gonogodecision_{column}"), "gonogodecision", [column])


def downgrade() -> None:
    op.drop_table("gonogodecision")

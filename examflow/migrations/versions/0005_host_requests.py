"""Hosting requests (借考): a school asks a site in the portal, the site accepts or declines.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hostrequest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("guest_code", AutoString(), nullable=False),
        sa.Column("host_code", AutoString(), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("requested_by", AutoString(), nullable=False),
        sa.Column("decision", AutoString(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["guest_code"], ["school.code"]),
        sa.ForeignKeyConstraint(["host_code"], ["school.code"]),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("guest_code", "host_code", "sitting_code"):
        op.create_index(op.f(f"ix_hostrequest_{column}"), "hostrequest", [column])


def downgrade() -> None:
    op.drop_table("hostrequest")

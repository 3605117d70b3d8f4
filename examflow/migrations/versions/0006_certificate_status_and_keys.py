"""Revocation lists, keys enrolled from a school's browser, ID checks on the verification page.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "partykey",
        sa.Column("status", AutoString(), server_default="approved", nullable=False),
    )
    op.add_column("partykey", sa.Column("approved_at", UTCDateTime(), nullable=True))
    op.add_column("partykey", sa.Column("revoked_at", UTCDateTime(), nullable=True))
    op.add_column("certificatenumber", sa.Column("status_index", sa.Integer(), nullable=True))
    op.add_column("certificatenumber", sa.Column("entry_hash", AutoString(), nullable=True))
    op.create_index(
        op.f("ix_certificatenumber_status_index"),
        "certificatenumber",
        ["status_index"],
        unique=True,
    )
    op.add_column("issuedcertificate", sa.Column("status_index", sa.Integer(), nullable=True))
    op.create_table(
        "certificaterevocation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("certificate_number", AutoString(), nullable=False),
        sa.Column("status_index", sa.Integer(), nullable=False),
        sa.Column("reason", AutoString(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=False),
        sa.Column("unrevoked_at", UTCDateTime(), nullable=True),
        sa.Column("superseded", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("sitting_code", "certificate_number", "status_index"):
        op.create_index(
            op.f(f"ix_certificaterevocation_{column}"), "certificaterevocation", [column]
        )
    op.create_table(
        "statuslistrecord",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("purpose", AutoString(), nullable=False),
        sa.Column("credential_json", AutoString(), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("sitting_code", "purpose"),
    )
    op.create_table(
        "holdercheck",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("certificate_number", AutoString(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_holdercheck_certificate_number"), "holdercheck", ["certificate_number"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_holdercheck_certificate_number"), table_name="holdercheck")
    op.drop_table("holdercheck")
    op.drop_table("statuslistrecord")
    for column in ("sitting_code", "certificate_number", "status_index"):
        op.drop_index(
            op.f(f"ix_certificaterevocation_{column}"), table_name="certificaterevocation"
        )
    op.drop_table("certificaterevocation")
    with op.batch_alter_table("issuedcertificate") as batch:
        batch.drop_column("status_index")
    op.drop_index(op.f("ix_certificatenumber_status_index"), table_name="certificatenumber")
    with op.batch_alter_table("certificatenumber") as batch:
        batch.drop_column("entry_hash")
        batch.drop_column("status_index")
    with op.batch_alter_table("partykey") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("approved_at")
        batch.drop_column("status")

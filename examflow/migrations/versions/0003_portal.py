"""The school portal's access tables: sign-in links, sessions, sign-in requests, the audit.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 14:34:07.944129
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portalaudit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("school_code", AutoString(), nullable=False),
        sa.Column("contact", AutoString(), nullable=False),
        sa.Column("action", AutoString(), nullable=False),
        sa.Column("detail", AutoString(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("client", AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_portalaudit_school_code"), "portalaudit", ["school_code"])
    op.create_index(op.f("ix_portalaudit_sitting_code"), "portalaudit", ["sitting_code"])
    op.create_table(
        "signinrequest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_code", AutoString(length=64), nullable=False),
        sa.Column("address_hash", AutoString(length=64), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_signinrequest_address_hash"), "signinrequest", ["address_hash"])
    op.create_index(op.f("ix_signinrequest_requested_at"), "signinrequest", ["requested_at"])
    op.create_index(op.f("ix_signinrequest_school_code"), "signinrequest", ["school_code"])
    op.create_table(
        "portallink",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", AutoString(length=64), nullable=False),
        sa.Column("school_code", AutoString(), nullable=False),
        sa.Column("contact", AutoString(), nullable=False),
        sa.Column("sitting_code", AutoString(), nullable=True),
        sa.Column("stage", AutoString(), nullable=True),
        sa.Column("single_use", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["school_code"], ["school.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(op.f("ix_portallink_school_code"), "portallink", ["school_code"])
    op.create_table(
        "portalsession",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", AutoString(length=64), nullable=False),
        sa.Column("csrf_token", AutoString(), nullable=False),
        sa.Column("school_code", AutoString(), nullable=False),
        sa.Column("contact", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["school_code"], ["school.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(op.f("ix_portalsession_school_code"), "portalsession", ["school_code"])


def downgrade() -> None:
    op.drop_index(op.f("ix_portalsession_school_code"), table_name="portalsession")
    op.drop_table("portalsession")
    op.drop_index(op.f("ix_portallink_school_code"), table_name="portallink")
    op.drop_table("portallink")
    op.drop_index(op.f("ix_signinrequest_school_code"), table_name="signinrequest")
    op.drop_index(op.f("ix_signinrequest_requested_at"), table_name="signinrequest")
    op.drop_index(op.f("ix_signinrequest_address_hash"), table_name="signinrequest")
    op.drop_table("signinrequest")
    op.drop_index(op.f("ix_portalaudit_sitting_code"), table_name="portalaudit")
    op.drop_index(op.f("ix_portalaudit_school_code"), table_name="portalaudit")
    op.drop_table("portalaudit")

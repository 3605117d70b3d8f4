"""ID checks on the verification page counted per client address too (its hash), in the
database, so that every portal worker shares the limit.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 17:53:54
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "holdercheck",
        sa.Column("client_hash", AutoString(), server_default="", nullable=False),
    )
    op.create_index(op.f("ix_holdercheck_client_hash"), "holdercheck", ["client_hash"])


def downgrade() -> None:
    op.drop_index(op.f("ix_holdercheck_client_hash"), table_name="holdercheck")
    with op.batch_alter_table("holdercheck") as batch:
        batch.drop_column("client_hash")

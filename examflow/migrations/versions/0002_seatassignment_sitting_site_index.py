"""Index seat assignments by (sitting, site): how a site's materials read its seats.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 05:05:30.338914
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_seatassignment_sitting_site", "seatassignment", ["sitting_code", "site_code"]
    )


def downgrade() -> None:
    op.drop_index("ix_seatassignment_sitting_site", table_name="seatassignment")

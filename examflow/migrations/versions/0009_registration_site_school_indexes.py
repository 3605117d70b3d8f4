"""Index registrations by (sitting, site) and (sitting, school): how a school's portal page
reads its own candidates without scanning the sitting.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 16:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_registration_sitting_site", "registration", ["sitting_code", "site_code"])
    op.create_index(
        "ix_registration_sitting_school", "registration", ["sitting_code", "school_code"]
    )


def downgrade() -> None:
    op.drop_index("ix_registration_sitting_school", table_name="registration")
    op.drop_index("ix_registration_sitting_site", table_name="registration")

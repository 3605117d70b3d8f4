"""Where each sitting's revocation list is published (its credentials' ``credentialStatus``):
fixed by the sitting's first signature at EXAMFLOW_PUBLIC_URL. Sittings that already have
signatures or credentials keep the address those were made with (the issuer's, before the
public address was used), so that upgrading voids no signature.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 17:47:29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_BASE = "https://www.hotmatrix.cn"  # models.certificates.LEGACY_STATUS_LIST_BASE


def upgrade() -> None:
    op.create_table(
        "statuslistaddress",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("url", AutoString(), nullable=False),
        sa.Column("fixed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("sitting_code"),
    )
    op.execute(
        "INSERT INTO statuslistaddress (sitting_code, url, fixed_at) "
        f"SELECT sitting_code, '{LEGACY_BASE}/status/' || sitting_code || '/revocation', "
        "CURRENT_TIMESTAMP FROM (SELECT sitting_code FROM signaturerecord "
        "UNION SELECT sitting_code FROM issuedcertificate) AS signed"
    )


def downgrade() -> None:
    op.drop_table("statuslistaddress")

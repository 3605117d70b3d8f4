"""The initial schema: every table as the models declared it when migrations began.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 05:05:07.872270
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feestandard",
        sa.Column("province", AutoString(), nullable=False),
        sa.Column("level", AutoString(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("province", "level", "year"),
    )
    op.create_index(op.f("ix_feestandard_province"), "feestandard", ["province"])
    op.create_table(
        "outboxmessage",
        sa.Column("key", AutoString(), nullable=False),
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("stage", AutoString(), nullable=False),
        sa.Column("checkpoint", AutoString(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("recipient_ref", AutoString(), nullable=False),
        sa.Column("to_addr", AutoString(), nullable=False),
        sa.Column("cc_addr", AutoString(), nullable=True),
        sa.Column("subject", AutoString(), nullable=False),
        sa.Column("text_body", AutoString(), nullable=False),
        sa.Column("html_body", AutoString(), nullable=False),
        sa.Column("attachment_name", AutoString(), nullable=True),
        sa.Column("attachment_type", AutoString(), nullable=True),
        sa.Column("attachment", sa.LargeBinary(), nullable=True),
        sa.Column("message_id", AutoString(), nullable=False),
        sa.Column(
            "status", sa.Enum("pending", "sent", "failed", name="outboxstatus"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", AutoString(), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_outboxmessage_key"),
    )
    op.create_index(op.f("ix_outboxmessage_sitting_code"), "outboxmessage", ["sitting_code"])
    op.create_index(op.f("ix_outboxmessage_status"), "outboxmessage", ["status"])
    op.create_table(
        "partykey",
        sa.Column("key_id", AutoString(), nullable=False),
        sa.Column("party", AutoString(), nullable=False),
        sa.Column("public_key_b64", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_id"),
        sa.UniqueConstraint("public_key_b64"),
    )
    op.create_index(op.f("ix_partykey_party"), "partykey", ["party"])
    op.create_table(
        "school",
        sa.Column("code", AutoString(length=32), nullable=False),
        sa.Column("name", AutoString(), nullable=False),
        sa.Column("province", AutoString(), nullable=False),
        sa.Column("is_pilot", sa.Boolean(), nullable=False),
        sa.Column("pilot_scale", sa.Integer(), nullable=True),
        sa.Column("is_site", sa.Boolean(), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=True),
        sa.Column("affairs_email", AutoString(), nullable=False),
        sa.Column("tech_email", AutoString(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index(op.f("ix_school_is_site"), "school", ["is_site"])
    op.create_index(op.f("ix_school_province"), "school", ["province"])
    op.create_table(
        "sitting",
        sa.Column("code", AutoString(length=32), nullable=False),
        sa.Column("name", AutoString(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("certificate", AutoString(), nullable=False),
        sa.Column("organiser", AutoString(), nullable=False),
        sa.Column("spec_json", AutoString(), nullable=False),
        sa.Column("source", AutoString(), nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index(op.f("ix_sitting_year"), "sitting", ["year"])
    op.create_table(
        "attendance",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("ticket_number", AutoString(), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sitting_code", "ticket_number"),
    )
    op.create_index(op.f("ix_attendance_sitting_code"), "attendance", ["sitting_code"])
    op.create_table(
        "importbatch",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("kind", AutoString(), nullable=False),
        sa.Column("file_name", AutoString(), nullable=False),
        sa.Column("sha256", AutoString(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_importbatch_sha256"), "importbatch", ["sha256"])
    op.create_index(op.f("ix_importbatch_sitting_code"), "importbatch", ["sitting_code"])
    op.create_table(
        "paperrequest",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("school_code", AutoString(), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["school_code"], ["school.code"]),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sitting_code", "school_code"),
    )
    op.create_table(
        "payment",
        sa.Column("school_code", AutoString(), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("paid_at", UTCDateTime(), nullable=False),
        sa.Column("note", AutoString(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["school_code"], ["school.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_payment_school_code"), "payment", ["school_code"])
    op.create_table(
        "publication",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sitting_code"),
    )
    op.create_table(
        "reviewrequest",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("school_code", AutoString(), nullable=False),
        sa.Column("filed_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["school_code"], ["school.code"]),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_reviewrequest_school_code"), "reviewrequest", ["school_code"])
    op.create_index(op.f("ix_reviewrequest_sitting_code"), "reviewrequest", ["sitting_code"])
    op.create_table(
        "room",
        sa.Column("site_code", AutoString(), nullable=False),
        sa.Column("name", AutoString(), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["site_code"], ["school.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_code", "name"),
    )
    op.create_index(op.f("ix_room_site_code"), "room", ["site_code"])
    op.create_table(
        "signaturerecord",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("school_code", AutoString(), nullable=False),
        sa.Column("party", AutoString(), nullable=False),
        sa.Column("key_id", AutoString(), nullable=False),
        sa.Column("batch_digest", AutoString(), nullable=False),
        sa.Column("signature_b64", AutoString(), nullable=False),
        sa.Column("created", AutoString(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_signaturerecord_sitting_code"), "signaturerecord", ["sitting_code"])
    op.create_table(
        "siteagreement",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("host_code", AutoString(), nullable=False),
        sa.Column("guest", AutoString(), nullable=False),
        sa.Column("agreed_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["host_code"], ["school.code"]),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sitting_code", "host_code", "guest"),
    )
    op.create_index(op.f("ix_siteagreement_host_code"), "siteagreement", ["host_code"])
    op.create_index(op.f("ix_siteagreement_sitting_code"), "siteagreement", ["sitting_code"])
    op.create_table(
        "siteapplication",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("school_code", AutoString(), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=True),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
        sa.Column("approved_at", UTCDateTime(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["school_code"], ["school.code"]),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sitting_code", "school_code"),
    )
    op.create_index(op.f("ix_siteapplication_school_code"), "siteapplication", ["school_code"])
    op.create_index(op.f("ix_siteapplication_sitting_code"), "siteapplication", ["sitting_code"])
    op.create_table(
        "sitefactrecord",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("site_code", AutoString(), nullable=False),
        sa.Column("fact", AutoString(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("source", AutoString(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["site_code"], ["school.code"]),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sitting_code", "site_code", "fact"),
    )
    op.create_table(
        "registration",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("school_code", AutoString(), nullable=True),
        sa.Column("site_code", AutoString(), nullable=False),
        sa.Column("name", AutoString(), nullable=False),
        sa.Column("id_number", AutoString(length=18), nullable=False),
        sa.Column("level", AutoString(), nullable=False),
        sa.Column("province", AutoString(), nullable=False),
        sa.Column("fee_fen", sa.Integer(), nullable=False),
        sa.Column("fee_basis", AutoString(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["importbatch.id"]),
        sa.ForeignKeyConstraint(["school_code"], ["school.code"]),
        sa.ForeignKeyConstraint(["site_code"], ["school.code"]),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sitting_code", "id_number"),
    )
    op.create_table(
        "certificatenumber",
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("certificate_number", AutoString(), nullable=False),
        sa.Column("id_salt", AutoString(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["registration_id"], ["registration.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("certificate_number"),
        sa.UniqueConstraint("registration_id"),
    )
    op.create_table(
        "issuedcertificate",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("school_code", AutoString(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("certificate_number", AutoString(), nullable=False),
        sa.Column("batch_digest", AutoString(), nullable=False),
        sa.Column("credential_json", AutoString(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["registration_id"], ["registration.id"]),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("certificate_number"),
        sa.UniqueConstraint("registration_id"),
    )
    op.create_index(
        op.f("ix_issuedcertificate_sitting_code"), "issuedcertificate", ["sitting_code"]
    )
    op.create_table(
        "reviewitem",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("ticket_number", AutoString(), nullable=False),
        sa.Column("reason", AutoString(), nullable=False),
        sa.Column("score_before", sa.Integer(), nullable=False),
        sa.Column("score_after", sa.Integer(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["registration_id"], ["registration.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["reviewrequest.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "registration_id"),
    )
    op.create_index(op.f("ix_reviewitem_request_id"), "reviewitem", ["request_id"])
    op.create_table(
        "score",
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("ticket_number", AutoString(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["registration_id"], ["registration.id"]),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("registration_id"),
    )
    op.create_index(op.f("ix_score_sitting_code"), "score", ["sitting_code"])
    op.create_table(
        "seatassignment",
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("sitting_code", AutoString(), nullable=False),
        sa.Column("site_code", AutoString(), nullable=False),
        sa.Column("level", AutoString(), nullable=False),
        sa.Column("room", AutoString(), nullable=False),
        sa.Column("seat", sa.Integer(), nullable=False),
        sa.Column("ticket_number", AutoString(), nullable=False),
        sa.Column("ticket_seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("arranged_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["registration_id"], ["registration.id"]),
        sa.ForeignKeyConstraint(["sitting_code"], ["sitting.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("registration_id"),
        sa.UniqueConstraint("ticket_number"),
    )
    op.create_index(op.f("ix_seatassignment_sitting_code"), "seatassignment", ["sitting_code"])


def downgrade() -> None:
    op.drop_table("seatassignment")
    op.drop_table("score")
    op.drop_table("reviewitem")
    op.drop_table("issuedcertificate")
    op.drop_table("certificatenumber")
    op.drop_table("registration")
    op.drop_table("sitefactrecord")
    op.drop_table("siteapplication")
    op.drop_table("siteagreement")
    op.drop_table("signaturerecord")
    op.drop_table("room")
    op.drop_table("reviewrequest")
    op.drop_table("publication")
    op.drop_table("payment")
    op.drop_table("paperrequest")
    op.drop_table("importbatch")
    op.drop_table("attendance")
    op.drop_table("sitting")
    op.drop_table("school")
    op.drop_table("partykey")
    op.drop_table("outboxmessage")
    op.drop_table("feestandard")
    sa.Enum(name="outboxstatus").drop(op.get_bind(), checkfirst=True)  # a type on PostgreSQL

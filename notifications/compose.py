"""Planned messages rendered into outbox drafts (subject, text, HTML, optional .ics)."""

from datetime import date, datetime

from models.checkpoints import CheckpointOutcome, PlannedMessage
from models.domain import SHANGHAI
from models.outbox import MessageDraft
from models.sittings import Sitting
from notifications.ics import sitting_ics
from notifications.rendering import render_message


def checkpoint_day(as_of: datetime) -> date:
    """The checkpoint's day in Asia/Shanghai: one message per recipient per checkpoint day."""
    return as_of.astimezone(SHANGHAI).date()


def compose(
    planned: list[PlannedMessage],
    outcome: CheckpointOutcome,
    sitting: Sitting,
    site_codes: set[str],
) -> list[MessageDraft]:
    day = checkpoint_day(outcome.as_of)
    spec = sitting.spec
    drafts = []
    for p in planned:
        rendered = render_message(p.template, p.context)
        attachment: dict[str, object] = {}
        if p.ics_school is not None:
            attachment = {
                "attachment_name": f"{sitting.code}-{p.ics_school}.ics",
                "attachment_type": "text/calendar;charset=utf-8;method=PUBLISH",
                "attachment": sitting_ics(
                    spec,
                    sitting.certificate,
                    p.ics_school,
                    p.ics_school in site_codes,
                    outcome.as_of,
                ),
            }
        drafts.append(
            MessageDraft(
                sitting_code=sitting.code,
                stage=outcome.stage.value,
                checkpoint=outcome.checkpoint.value,
                day=day,
                recipient_ref=p.recipient_ref,
                to_addr=p.to_addr,
                cc_addr=p.cc_addr,
                subject=rendered.subject,
                text_body=rendered.text,
                html_body=rendered.html,
                **attachment,
            )
        )
    return drafts

"""Planned messages rendered into outbox drafts (subject, text, HTML, optional .ics)."""

from datetime import date, datetime

from models.checkpoints import CheckpointOutcome, PlannedMessage
from models.domain import in_shanghai
from models.links import materials_link
from models.outbox import MessageDraft, is_announcement
from models.sittings import Sitting
from notifications.ics import sitting_ics
from notifications.rendering import render_message


def checkpoint_day(as_of: datetime) -> date:
    """The checkpoint's day in Asia/Shanghai: one message per recipient per checkpoint day."""
    return in_shanghai(as_of).date()


KIND_LABELS = {
    "tickets": "准考证",
    "labels": "桌签",
    "door_signs": "门贴",
    "sign_in_sheets": "签到表",
}


def compose(
    planned: list[PlannedMessage],
    outcome: CheckpointOutcome,
    sitting: Sitting,
    site_codes: set[str],
    links: tuple[str, bytes] | None = None,
) -> list[MessageDraft]:
    """Render each planned message; ``links`` is (public base URL, link secret) for the
    materials links of sites."""
    day = checkpoint_day(outcome.as_of)
    spec = sitting.spec
    drafts = []
    for p in planned:
        context = p.context
        if p.links_site is not None and links is not None:
            context = {
                **context,
                "links": [
                    {
                        "label": label,
                        "url": materials_link(*links, sitting.code, p.links_site, kind),
                    }
                    for kind, label in KIND_LABELS.items()
                ],
            }
        rendered = render_message(p.template, context)
        ics_name = ics_type = None
        ics: bytes | None = None
        if p.ics_school is not None:
            ics_name = f"{sitting.code}-{p.ics_school}.ics"
            ics_type = "text/calendar;charset=utf-8;method=PUBLISH"
            ics = sitting_ics(
                spec, sitting.certificate, p.ics_school, p.ics_school in site_codes, outcome.as_of
            )
        drafts.append(
            MessageDraft(
                sitting_code=sitting.code,
                stage=outcome.stage.value,
                checkpoint=outcome.checkpoint.value,
                day=day,
                once=is_announcement(p.template),
                recipient_ref=p.recipient_ref,
                to_addr=p.to_addr,
                cc_addr=p.cc_addr,
                subject=rendered.subject,
                text_body=rendered.text,
                html_body=rendered.html,
                attachment_name=ics_name,
                attachment_type=ics_type,
                attachment=ics,
            )
        )
    return drafts

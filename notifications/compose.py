"""Planned messages rendered into outbox drafts (subject, text, HTML, optional .ics)."""

from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlmodel import Session

from models.checkpoints import OPS, CheckpointOutcome, PlannedMessage
from models.domain import StageCode, in_shanghai
from models.links import materials_link
from models.outbox import MessageDraft, is_announcement
from models.portal_access import PortalLink, issue_link, new_link, portal_signin_url
from models.sittings import Sitting
from notifications.ics import SittingCalendars
from notifications.rendering import render_message


def checkpoint_day(as_of: datetime) -> date:
    """The checkpoint's day in Asia/Shanghai: one message per recipient per checkpoint day."""
    return in_shanghai(as_of).date()


# A school's portal link for (school code, contact address, stage): (URL, valid until).
PortalLinks = Callable[[str, str, StageCode], tuple[str, datetime]]
LINK_GRACE = timedelta(days=1)


def portal_links(
    session: Session, public_url: str, sitting: Sitting, as_of: datetime
) -> PortalLinks:
    """Sign-in links for scheduled mail: one per message, stored hashed, for the school and
    contact it goes to, opening the sitting's page at the stage; usable again and again until
    the stage's window closes plus one day (the school may open its mail more than once); a
    message sent later than that (a review resolved after publicity) gets one more day."""

    def link(school_code: str, contact: str, stage: StageCode) -> tuple[str, datetime]:
        until = max(sitting.spec.window(stage).closes_at, as_of) + LINK_GRACE
        token = issue_link(
            session,
            school_code,
            contact,
            as_of,
            expires_at=until,
            single_use=False,
            sitting_code=sitting.code,
            stage=stage.value,
        )
        return portal_signin_url(public_url, token), until

    return link


class DeferredPortalLinks:
    """``portal_links`` without the database while composing: each link's token is made in
    memory and its row kept in ``rows``, for the caller to store (``store_links``) in the
    short transaction that queues the messages; the links are the same as ``portal_links``'.
    """

    def __init__(self, public_url: str, sitting: Sitting, as_of: datetime) -> None:
        self.public_url, self.sitting_code, self.as_of = public_url, sitting.code, as_of
        self.spec = sitting.spec
        self.rows: list[PortalLink] = []

    def __call__(self, school_code: str, contact: str, stage: StageCode) -> tuple[str, datetime]:
        until = max(self.spec.window(stage).closes_at, self.as_of) + LINK_GRACE
        token, row = new_link(
            school_code,
            contact,
            self.as_of,
            expires_at=until,
            single_use=False,
            sitting_code=self.sitting_code,
            stage=stage.value,
        )
        self.rows.append(row)
        return portal_signin_url(self.public_url, token), until


def with_portal_link(
    context: dict[str, object], link: PortalLinks | None, school: str, to: str, stage: StageCode
) -> dict[str, object]:
    """``context`` plus the school's portal link (``portal_url``, ``portal_until``)."""
    if link is None or school == OPS:
        return context
    url, until = link(school, to, stage)
    return {**context, "portal_url": url, "portal_until": f"{in_shanghai(until):%Y-%m-%d %H:%M}"}


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
    portal: PortalLinks | None = None,
) -> list[MessageDraft]:
    """Render each planned message; ``links`` is (public base URL, link secret) for the
    materials links of sites; ``portal`` gives each school's message its sign-in link to
    the sitting's page at this stage (portal_links)."""
    day = checkpoint_day(outcome.as_of)
    calendars = SittingCalendars(sitting.spec, sitting.certificate, outcome.as_of)
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
        context = with_portal_link(context, portal, p.recipient_ref, p.to_addr, outcome.stage)
        rendered = render_message(p.template, context)
        ics_name = ics_type = None
        ics: bytes | None = None
        if p.ics_school is not None:
            ics_name = f"{sitting.code}-{p.ics_school}.ics"
            ics_type = "text/calendar;charset=utf-8;method=PUBLISH"
            ics = calendars.for_school(p.ics_school, p.ics_school in site_codes)
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

"""The tasks of the exam's go/no-go: which sites ops must decide on, record what they
decided, mail each site its decision, and keep the decision visible in the UI.

``send_decision_mail`` is also what ``examflow go-no-go`` calls: one path from a decision to
the site's mailbox, whether ops decided in the Prefect UI or on the command line.
"""

from datetime import datetime

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel
from sqlmodel import col, func, select

from examflow.db import session_scope
from examflow.overview import publish_overview_in_run
from examflow.settings import get_settings
from models.domain import StageCode, in_shanghai
from models.go_no_go import (
    GO_NO_GO_LABELS_ZH,
    GoNoGo,
    GoNoGoDecision,
    GoNoGoError,
    decided_sites,
    decisions_at,
    decisions_by_id,
    plan_decision_messages,
    record_decision,
    seated_candidates,
)
from models.outbox import MessageDraft, message_domain, queue_messages
from models.schools import School
from models.sittings import get_sitting
from models.stages import site_readiness
from notifications.compose import portal_links, with_portal_link
from notifications.rendering import render_message
from notifications.sender import DeliveryReport, deliver_sync
from tasks.smtp import smtp_config

TEMPLATE = "go_no_go_decision"


class SiteToDecide(BaseModel):
    """A site not ready the day before the exam, and not yet decided on."""

    code: str
    name: str
    lacks: list[str]
    candidates: int


class Choice(BaseModel):
    """One site's choice as ops gave it (in the form or on the command line)."""

    site: str
    choice: GoNoGo
    reason: str


class Recorded(BaseModel):
    ids: list[int]
    refused: list[str]  # "<site>: why", for choices that could not be recorded


@task(name="sites-to-decide", cache_policy=NO_CACHE)
def sites_to_decide(sitting: str, as_of: datetime) -> list[SiteToDecide]:
    """Every active site not ready at ``as_of`` that has no go/no-go decision yet (one made
    at any time: a re-run at an earlier ``as_of`` does not ask again)."""
    with session_scope() as session:
        row = get_sitting(session, sitting)
        decided = decided_sites(session, sitting)
        names = dict(session.exec(select(School.code, School.name)).all())
        return [
            SiteToDecide(
                code=code,
                name=names.get(code, code),
                lacks=lacks,
                candidates=len(seated_candidates(session, sitting, code)),
            )
            for code, lacks in sorted(site_readiness(session, row, until=as_of).items())
            if lacks and code not in decided
        ]


def latest_decision_id(sitting: str) -> int:
    """The newest decision's id in the sitting (0 if none): what was decided after it is new."""
    with session_scope() as session:
        newest = session.exec(
            select(func.max(GoNoGoDecision.id)).where(GoNoGoDecision.sitting_code == sitting)
        ).one()
        return int(newest or 0)


def decided_since(sitting: str, after_id: int) -> set[str]:
    """The sites with a decision recorded after decision ``after_id`` (e.g. on the CLI)."""
    with session_scope() as session:
        return set(
            session.exec(
                select(GoNoGoDecision.site_code).where(
                    GoNoGoDecision.sitting_code == sitting, col(GoNoGoDecision.id) > after_id
                )
            )
        )


@task(name="record-go-no-go", cache_policy=NO_CACHE)
def record_choices(
    sitting: str, choices: list[Choice], decided_by: str, note: str, as_of: datetime, via: str
) -> Recorded:
    """Record each choice through ``models.go_no_go.record_decision``; a choice it refuses
    (a go without a reason, say) is reported, not recorded, and the others still are."""
    recorded = Recorded(ids=[], refused=[])
    for c in choices:
        try:
            with session_scope() as session:
                d = record_decision(
                    session,
                    get_sitting(session, sitting),
                    c.site,
                    c.choice,
                    reason=c.reason,
                    decided_by=decided_by,
                    as_of=as_of,
                    via=via,
                    note=note,
                )
            recorded.ids.append(d.id)
        except GoNoGoError as exc:
            recorded.refused.append(str(exc))
    return recorded


def send_decision_mail(sitting: str, decision_ids: list[int], as_of: datetime) -> DeliveryReport:
    """Mail each decision to its site through the outbox (once per decision, whatever the
    day of a re-run) and deliver it now; like every mail to a school, it carries a sign-in
    link to the site's sitting page at the exam stage (where it uploads its attendance)."""
    settings = get_settings()
    with session_scope() as session:
        row = get_sitting(session, sitting)
        planned = plan_decision_messages(session, row, decisions_by_id(session, decision_ids))
        portal = portal_links(session, settings.public_url, row, as_of)
        drafts = []
        for p in planned:
            context = with_portal_link(
                p.context, portal, p.recipient_ref, p.to_addr, StageCode.exam
            )
            rendered = render_message(TEMPLATE, context)
            drafts.append(
                MessageDraft(
                    sitting_code=sitting,
                    stage="exam",
                    checkpoint=p.checkpoint,
                    day=in_shanghai(as_of).date(),
                    once=True,
                    recipient_ref=p.recipient_ref,
                    to_addr=p.to_addr,
                    cc_addr=p.cc_addr,
                    subject=rendered.subject,
                    text_body=rendered.text,
                    html_body=rendered.html,
                )
            )
        ids = queue_messages(
            session,
            drafts,
            queued_at=in_shanghai(as_of),
            mail_domain=message_domain(settings.mail_from),
        )
    if not ids:
        return DeliveryReport()
    return deliver_sync(settings.resolved_database_url(), ids, smtp_config())


@task(name="mail-go-no-go", cache_policy=NO_CACHE)
def mail_decisions(sitting: str, decision_ids: list[int], as_of: datetime) -> int:
    """Mail the sites their decisions; returns how many messages went out now."""
    report = send_decision_mail(sitting, decision_ids, as_of)
    return report.sent


def decisions_markdown(sitting: str, as_of: datetime) -> str:
    """The sitting's go/no-go decisions as a table (codes, names, no personal data)."""
    with session_scope() as session:
        decided = decisions_at(session, sitting, as_of)
        names = dict(session.exec(select(School.code, School.name)).all())
        held = {
            site: len(seated_candidates(session, sitting, site))
            for site, d in decided.items()
            if d.choice is GoNoGo.hold
        }
    lines = [f"# {sitting} · exam · go/no-go", ""]
    if not decided:
        return "\n".join([*lines, "_no decision recorded_"])
    lines += [
        "| site | name | decision | reason | by | at | via | candidates to re-seat |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for site, d in sorted(decided.items()):
        at = f"{in_shanghai(d.decided_at):%Y-%m-%d %H:%M}"
        lines.append(
            f"| {site} | {names.get(site, site)} | {d.choice.value} "
            f"({GO_NO_GO_LABELS_ZH[d.choice]}) | {_cell(d.reason)} | {_cell(d.decided_by)} | {at} "
            f"| {d.via} "
            f"| {held.get(site, '')} |"
        )
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def go_no_go_artifact_key(sitting: str) -> str:
    return f"{sitting}-go-no-go".lower().replace("_", "-")


@task(name="publish-go-no-go", cache_policy=NO_CACHE)
def publish_decisions(sitting: str, as_of: datetime) -> str:
    """The decisions as a markdown artifact (``<sitting>-go-no-go``); the sitting's overview
    refreshed (the exam stage's condition counts them)."""
    key = go_no_go_artifact_key(sitting)
    create_markdown_artifact(
        markdown=decisions_markdown(sitting, as_of),
        key=key,
        description=f"{sitting}: the exam's go/no-go decisions",
    )
    publish_overview_in_run(sitting, as_of)
    return key

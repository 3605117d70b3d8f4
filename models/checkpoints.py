"""What a stage checkpoint decides: its outcome, and who is to be told what.

Pure rules over the database: no rendering, no sending, no clock. A checkpoint always
evaluates its stage's condition; ``open`` announces the window to those concerned, ``remind``
tells only those still missing something, ``close`` escalates a stall to the organiser's ops.
"""

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, select

from models.condition import ORGANISER, Missing, Owed, PartyKind, describe
from models.domain import STAGE_LABELS_ZH, Checkpoint, StageCode, StageState, in_shanghai
from models.publicity import results_by_school
from models.registration import Registration
from models.schools import School
from models.scores import Publication
from models.sittings import Sitting
from models.stages import StageReport, active_sites, evaluate_stage, site_readiness

OPS = "ops"
# stages whose parties are schools (a social candidate counts under the site that hosts them)
SCHOOL_STAGES = (StageCode.registration, StageCode.publicity, StageCode.certificates)
SIGN_HINT = (
    "请使用学校签发密钥签发本校证书批次：examflow sign <考次> --party <学校代码> --key <密钥文件>"
)


class MissingItem(Missing):
    """A missing item with its party's name, as the artifact and the stall message list it."""

    party_name: str


class CheckpointOutcome(BaseModel):
    """A checkpoint's evaluation, small enough to pass between Prefect tasks."""

    sitting: str
    sitting_name: str
    stage: StageCode
    checkpoint: Checkpoint
    as_of: datetime
    state: StageState
    opens: datetime | None
    closes: datetime
    parties_total: int
    party_kind: str
    missing: list[MissingItem]
    note: str = ""

    @property
    def parties_missing(self) -> int:
        """Schools or sites missing something (the organiser's own parts are not counted)."""
        return len({m.party for m in self.missing if m.party_kind is not PartyKind.organiser})

    def summary(self) -> str:
        """E.g. '3 of 41 sites: 考试平台已安装 (2), 模考及平台测试已通过 (3)'."""
        if not self.missing:
            return (
                f"all {self.parties_total} {self.party_kind} done"
                if self.parties_total
                else (self.note or "nothing to do")
            )
        own = [describe(m) for m in self.missing if m.party_kind is PartyKind.organiser]
        reasons = Counter(
            describe(m) for m in self.missing if m.party_kind is not PartyKind.organiser
        )
        listed = ", ".join(f"{what} ({n})" for what, n in reasons.most_common(4))
        more = f", … {len(reasons) - 4} more" if len(reasons) > 4 else ""
        parts = [
            f"{self.parties_missing} of {self.parties_total} {self.party_kind}: {listed}{more}"
        ]
        if not reasons:
            parts = []
        parts += [f"organiser: {what}" for what in own]
        return "; ".join(parts)


def _names(session: Session) -> dict[str, str]:
    return {code: name for code, name in session.exec(select(School.code, School.name))}


def evaluate_checkpoint(
    session: Session, sitting: Sitting, stage: StageCode, checkpoint: Checkpoint, as_of: datetime
) -> CheckpointOutcome:
    report: StageReport = evaluate_stage(session, sitting, stage, as_of)
    names = _names(session)
    names[ORGANISER] = "培训评价组织"
    if stage in SCHOOL_STAGES:
        owner = func.coalesce(Registration.school_code, Registration.site_code)
        kind = "schools"
        total = session.exec(
            select(func.count(func.distinct(owner))).where(
                Registration.sitting_code == sitting.code
            )
        ).one()
    else:
        kind, total = "sites", len(active_sites(session, sitting.code))
    return CheckpointOutcome(
        sitting=sitting.code,
        sitting_name=sitting.name,
        stage=stage,
        checkpoint=checkpoint,
        as_of=as_of,
        state=report.state,
        opens=report.window.opens_at,
        closes=report.window.closes_at,
        parties_total=total,
        party_kind=kind,
        missing=[
            MissingItem(**m.model_dump(), party_name=names.get(m.party, m.party))
            for m in report.condition.missing
        ],
        note=report.condition.note,
    )


@dataclass(frozen=True)
class PlannedMessage:
    """One message to queue: who, which template, and the facts it states."""

    recipient_ref: str
    to_addr: str
    cc_addr: str | None
    template: str
    context: dict[str, object]
    ics_school: str | None = None
    links_site: str | None = None  # materials: the site whose signed download links to add


@dataclass(frozen=True)
class Recipient:
    code: str
    name: str
    to_addr: str
    cc_addr: str | None


def _site_recipient(school: School, stage: StageCode) -> Recipient:
    """Platform install goes to the technical contact (exam affairs in copy); the rest the
    other way round, or to exam affairs alone for materials."""
    affairs, tech = school.affairs_email, school.tech_email
    if stage is StageCode.platform_install and tech:
        return Recipient(school.code, school.name, tech, affairs if affairs != tech else None)
    if stage is StageCode.materials or not tech or tech == affairs:
        return Recipient(school.code, school.name, affairs, None)
    return Recipient(school.code, school.name, affairs, tech)


def _format_deadline(moment: datetime) -> str:
    local = in_shanghai(moment)
    if (local.hour, local.minute) == (23, 59):
        return f"{local:%Y年%m月%d日} 24:00（北京时间）"
    return f"{local:%Y年%m月%d日 %H:%M}（北京时间）"


def _base_context(outcome: CheckpointOutcome, certificate: str) -> dict[str, object]:
    return {
        "certificate": certificate,
        "sitting_code": outcome.sitting,
        "sitting_name": outcome.sitting_name,
        "stage": outcome.stage.value,
        "stage_label": STAGE_LABELS_ZH[outcome.stage],
        "checkpoint": outcome.checkpoint.value,
        "opens": f"{in_shanghai(outcome.opens):%Y年%m月%d日}" if outcome.opens else "",
        "deadline": _format_deadline(outcome.closes),
        "links": [],
    }


def plan_messages(
    session: Session, sitting: Sitting, outcome: CheckpointOutcome, ops_email: str
) -> list[PlannedMessage]:
    """The messages due at this checkpoint (the outbox drops those already queued today)."""
    base = _base_context(outcome, sitting.certificate)
    schools = {s.code: s for s in session.exec(select(School))}
    planned: list[PlannedMessage] = []
    # what each school or site owes (the organiser's own parts go to ops, in the stall mail)
    owed: dict[str, list[MissingItem]] = {}
    for m in outcome.missing:
        if m.party_kind is not PartyKind.organiser and m.party in schools:
            owed.setdefault(m.party, []).append(m)

    if outcome.stage is StageCode.registration:
        planned.extend(_registration_messages(session, sitting, outcome, base, schools))
    elif outcome.stage is StageCode.certificates:
        if outcome.checkpoint is not Checkpoint.close and outcome.state is StageState.open:
            for code, items in sorted(owed.items()):
                if any(_school_must_sign(m) for m in items):
                    school = schools[code]
                    r = Recipient(code, school.name, school.affairs_email, None)
                    planned.append(_message(r, "reminder", base, [*_texts(items), SIGN_HINT]))
    elif outcome.stage is StageCode.publicity:
        if outcome.checkpoint is Checkpoint.open:
            planned.extend(_results_messages(session, sitting, base, schools))
    elif outcome.stage is StageCode.exam and outcome.checkpoint is Checkpoint.open:
        planned.append(_go_no_go(session, sitting, base, schools, ops_email, outcome.as_of))
    elif outcome.checkpoint is Checkpoint.open:
        materials = outcome.stage is StageCode.materials
        for code in active_sites(session, sitting.code):
            r = _site_recipient(schools[code], outcome.stage)
            message = _message(r, "window_open", base, _texts(owed.get(code, [])))
            planned.append(replace(message, links_site=code) if materials else message)
    elif outcome.checkpoint is Checkpoint.remind and outcome.state is StageState.open:
        for code, items in sorted(owed.items()):
            r = _site_recipient(schools[code], outcome.stage)
            planned.append(_message(r, "reminder", base, _texts(items)))

    if outcome.checkpoint is Checkpoint.close and outcome.state is StageState.stalled:
        rows = [
            {"party": m.party, "name": m.party_name, "what": describe(m)} for m in outcome.missing
        ]
        planned.append(
            PlannedMessage(
                recipient_ref=OPS,
                to_addr=ops_email,
                cc_addr=None,
                template="stall_escalation",
                context={**base, "summary": outcome.summary(), "rows": rows},
            )
        )
    return planned


def _results_messages(
    session: Session, sitting: Sitting, base: dict[str, object], schools: dict[str, School]
) -> list[PlannedMessage]:
    """Publication: each school gets its own candidates' results, and nobody else's."""
    if (
        session.exec(select(Publication).where(Publication.sitting_code == sitting.code)).first()
        is None
    ):
        return []
    planned = []
    for code, rows in sorted(results_by_school(session, sitting.code).items()):
        school = schools[code]
        r = Recipient(code, school.name, school.affairs_email, None)
        passed = sum(1 for row in rows if row["result"] == "合格")
        planned.append(
            PlannedMessage(
                recipient_ref=code,
                to_addr=r.to_addr,
                cc_addr=None,
                template="publicity_results",
                context={**base, "recipient_name": r.name, "rows": rows, "passed": passed},
            )
        )
    return planned


def _go_no_go(
    session: Session,
    sitting: Sitting,
    base: dict[str, object],
    schools: dict[str, School],
    ops_email: str,
    as_of: datetime,
) -> PlannedMessage:
    """The day before the exam: every active site, ready or not, and what a site lacks."""
    readiness = site_readiness(session, sitting, until=as_of)
    rows = [
        {"party": code, "name": schools[code].name, "ready": not lacks, "what": "、".join(lacks)}
        for code, lacks in sorted(readiness.items(), key=lambda item: (not item[1], item[0]))
    ]
    not_ready = sum(1 for r in rows if not r["ready"])
    return PlannedMessage(
        recipient_ref=OPS,
        to_addr=ops_email,
        cc_addr=None,
        template="go_no_go",
        context={**base, "rows": rows, "not_ready": not_ready, "total": len(rows)},
    )


def _message(
    r: Recipient, template: str, base: dict[str, object], missing: list[str]
) -> PlannedMessage:
    return PlannedMessage(
        recipient_ref=r.code,
        to_addr=r.to_addr,
        cc_addr=r.cc_addr,
        template=template,
        context={**base, "recipient_name": r.name, "missing": missing},
    )


def _texts(items: list[MissingItem] | list[Missing]) -> list[str]:
    return [describe(m) for m in items]


def _school_must_sign(item: Missing) -> bool:
    """A certificate batch that waits for the school's own signature."""
    unsigned = item.detail.get("unsigned", [])
    return item.item == Owed.unsigned_batch and isinstance(unsigned, list) and "school" in unsigned


def _reminder_item(school: str, item: Owed) -> Missing:
    return Missing(
        party=school, party_kind=PartyKind.school, stage=StageCode.registration, item=item
    )


def _registration_messages(
    session: Session,
    sitting: Sitting,
    outcome: CheckpointOutcome,
    base: dict[str, object],
    schools: dict[str, School],
) -> list[PlannedMessage]:
    """Open: every school, with its .ics. Remind: pilot schools with nobody registered yet."""
    if outcome.state is not StageState.open:
        return []
    counts = Counter(
        session.exec(
            select(Registration.school_code).where(Registration.sitting_code == sitting.code)
        )
    )
    planned = []
    for code, school in sorted(schools.items()):
        r = Recipient(code, school.name, school.affairs_email, None)
        if outcome.checkpoint is Checkpoint.open:
            planned.append(replace(_message(r, "window_open", base, []), ics_school=code))
        elif outcome.checkpoint is Checkpoint.remind and school.is_pilot and not counts[code]:
            items = [_reminder_item(code, Owed.nobody_registered)]
            if not school.is_site:
                items.append(_reminder_item(code, Owed.no_host_site))
            planned.append(_message(r, "registration_closing", base, _texts(items)))
    return planned


@dataclass
class CheckpointResult:
    """What a checkpoint run did, for the CLI and the flow's return value."""

    state: str
    sent: int = 0
    failed: int = 0
    pending: int = 0
    queued: int = 0
    missing: list[str] = field(default_factory=list)

"""`examflow demo`: rehearse sitting 2024-1 end to end on a simulated clock.

A generated register (40 schools, 12 sites, about a thousand candidates, some borrowing and
some social), registered before the deadline; then every checkpoint of the calendar in date
order, with site facts recorded as the weeks pass. A few sites lag, so stages stall; ops then
record what was missing and re-trigger the stalled checkpoints, which complete. Re-running the
demo changes nothing and sends nothing twice.
"""

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

from rich.padding import Padding
from rich.text import Text
from sqlmodel import col, select

from adapters.tabular import read_table
from deployments.plan import PlannedRun, plan_checkpoints
from examflow.cli.console import out
from examflow.cli.demo_results import Signers, file_demo_review, record_scores, resolve_demo_reviews
from examflow.db import session_scope
from examflow.settings import get_settings
from examflow.shipped import notice_calendar
from examflow.synthetic import (
    REGISTRATION_HEADER,
    SCHOOL_HEADER,
    SyntheticSchool,
    make_id_number,
    make_name,
    make_registrations,
    make_schools,
)
from models.arrangement import SeatAssignment
from models.attendance import record_attendance
from models.checkpoints import CheckpointResult
from models.domain import SHANGHAI, SOCIAL, Checkpoint, Level, StageCode
from models.facts import record_fact
from models.registration import REGISTRATION_COLUMNS, register_file
from models.schools import SCHOOL_COLUMNS, agree_to_host, import_schools
from models.sitting_calendar import parse_calendar
from models.sittings import get_sitting, store_calendar
from models.stages import SITE_FACTS
from models.table import Table

SITTING = "2024-1"
CALENDAR = notice_calendar()  # shipped with examflow: the demo runs from any directory
REGISTERED_AT = datetime(2024, 4, 20, 10, 0, tzinfo=SHANGHAI)
# which sites lag at which stage (they catch up only after ops chase them)
LAGGARDS: dict[StageCode, tuple[str, ...]] = {
    StageCode.platform_install: ("S00011", "S00012"),
    StageCode.materials: ("S00010",),
    StageCode.exam: ("S00009",),  # sends in its attendance late
}
ATTENDANCE_AT = datetime(2024, 5, 18, 19, 0, tzinfo=SHANGHAI)
# when the punctual sites' facts are recorded: days after the stage's window opens
FACT_DELAY_DAYS = {StageCode.training: 1, StageCode.platform_install: 6, StageCode.materials: 3}


@dataclass
class DemoRow:
    at: datetime
    stage: str
    checkpoint: str
    state: str
    sent: int
    note: str = ""


def _csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def prepare_register(schools: list[SyntheticSchool]) -> None:
    """Calendar, register, agreements, and about a thousand registrations (idempotent)."""
    import random

    calendar = parse_calendar(CALENDAR.read_text(encoding="utf-8"))
    rows = make_registrations(schools, 1000, [Level.junior, Level.intermediate], seed=11)
    rng = random.Random(5)
    rows += [
        ["", make_name(rng), make_id_number(rng), Level.junior.value, "S00001"] for _ in range(8)
    ]
    with session_scope() as session:
        store_calendar(session, calendar, str(CALENDAR), REGISTERED_AT)
        table = read_table(
            _csv_bytes(SCHOOL_HEADER, [s.row() for s in schools]), "demo", SCHOOL_COLUMNS
        )
        import_schools(session, table, REGISTERED_AT)
        spec = get_sitting(session, SITTING).spec
        for school in schools:
            if school.host:
                agree_to_host(session, spec, school.host, school.code, REGISTERED_AT)
        agree_to_host(session, spec, "S00001", SOCIAL, REGISTERED_AT)
    with session_scope() as session:
        reg_table = read_table(_csv_bytes(REGISTRATION_HEADER, rows), "demo", REGISTRATION_COLUMNS)
        register_file(
            session,
            get_sitting(session, SITTING),
            reg_table,
            file_name="demo-registrations.csv",
            sha256="demo",
            as_of=REGISTERED_AT,
        )


def record_punctual_facts(sites: list[str], up_to: datetime) -> None:
    """Each punctual site records its facts a few days into each window."""
    spec = parse_calendar(CALENDAR.read_text(encoding="utf-8")).sitting(SITTING)
    with session_scope() as session:
        for stage, delay in FACT_DELAY_DAYS.items():
            opens = spec.window(stage).opens_at
            assert opens is not None
            when = opens + timedelta(days=delay, hours=10)
            if when > up_to:
                continue
            for site in sites:
                if site in LAGGARDS.get(stage, ()):
                    continue
                for fact in SITE_FACTS[stage]:
                    record_fact(session, SITTING, site, fact, when, source="demo")


def record_demo_attendance(sites: set[str], when: datetime) -> None:
    """The sites' attendance sheets: everyone present but every 25th candidate."""
    with session_scope() as session:
        assignments = session.exec(
            select(SeatAssignment.ticket_number, SeatAssignment.site_code).where(
                SeatAssignment.sitting_code == SITTING, col(SeatAssignment.seat) > 0
            )
        ).all()
        rows = [
            (i + 2, {"ticket_number": number, "attendance": "缺考" if i % 25 == 0 else "出席"})
            for i, (number, site) in enumerate(sorted(assignments))
            if site in sites
        ]
        if rows:
            record_attendance(session, SITTING, Table(rows=rows, warnings=[]), when)


def prepare_results(run: PlannedRun, signers: Signers, sites: list[str]) -> None:
    """What happens outside examflow before a checkpoint: attendance sheets, marking,
    a school's review request, and the parties' signatures (one school lags)."""
    if run.stage is StageCode.exam and run.checkpoint is Checkpoint.close:
        record_demo_attendance(set(sites) - set(LAGGARDS[StageCode.exam]), ATTENDANCE_AT)
    if run.stage is StageCode.publicity and run.checkpoint is Checkpoint.open:
        record_scores(SITTING, run.at - timedelta(days=2))
    if run.stage is StageCode.publicity and run.checkpoint is Checkpoint.remind:
        file_demo_review(SITTING, run.at + timedelta(hours=2))
    if run.stage is StageCode.certificates and run.checkpoint is Checkpoint.open:
        signers.sign_all(
            SITTING, run.at - timedelta(hours=8), except_schools=(signers.laggard(SITTING),)
        )


def catch_up(stage: StageCode, when: datetime, signers: Signers) -> list[str]:
    """Ops chase the laggards of ``stage``: what they lacked is recorded now."""
    if stage is StageCode.publicity:
        return resolve_demo_reviews(SITTING, when)
    if stage is StageCode.certificates:
        laggard = signers.laggard(SITTING)
        signers.sign_all(SITTING, when)
        return [f"{laggard}'s signature"]
    laggards = LAGGARDS.get(stage, ())
    if stage is StageCode.exam:
        record_demo_attendance(set(laggards), when)
        return list(laggards)
    with session_scope() as session:
        for site in laggards:
            for fact in SITE_FACTS[stage]:
                record_fact(session, SITTING, site, fact, when, source="demo: ops")
    return list(laggards)


def run_checkpoint(run: PlannedRun, as_of: datetime) -> DemoRow:
    from flows.sitting_checkpoint import sitting_checkpoint

    state = sitting_checkpoint(SITTING, run.stage, run.checkpoint, as_of, return_state=True)
    data = state.result(raise_on_failure=False)
    sent = data.sent if isinstance(data, CheckpointResult) else 0
    return DemoRow(
        as_of, run.stage.value, run.checkpoint.value, state.name or "", sent, state.message or ""
    )


def run_demo() -> list[DemoRow]:
    schools = make_schools(40, 12, seats=120, pilot_scale=200, seed=3)
    sites = [s.code for s in schools if s.is_site]
    prepare_register(schools)
    spec = parse_calendar(CALENDAR.read_text(encoding="utf-8")).sitting(SITTING)
    rows: list[DemoRow] = []
    signers = Signers()
    for run in plan_checkpoints(spec):
        record_punctual_facts(sites, run.at)
        prepare_results(run, signers, sites)
        row = run_checkpoint(run, run.at)
        rows.append(row)
        if row.state == "Stalled" and run.checkpoint is Checkpoint.close:
            fixed_at = run.at + timedelta(hours=3)
            chased = catch_up(run.stage, fixed_at, signers)
            retry = run_checkpoint(run, fixed_at)
            retry.note = f"re-triggered after {', '.join(chased)}: " + retry.note
            rows.append(retry)
    print_summary(rows)
    return rows


SUMMARY_COLUMNS = ("as of", "stage", "checkpoint", "state", "sent")
NOTE_INDENT = 4  # each run's summary on its own wrapped line(s) under the run


def print_summary(rows: list[DemoRow]) -> None:
    """One line per run, its summary wrapped beneath it: readable in an 80-column terminal
    (a sixth table column would leave the summary a few characters wide)."""
    settings = get_settings()
    styles = {"Stalled": "bold red", "StageComplete": "green", "MailPending": "yellow"}
    cells = [(f"{r.at:%Y-%m-%d %H:%M}", r.stage, r.checkpoint, r.state, str(r.sent)) for r in rows]
    widths = [max(len(c[i]) for c in [SUMMARY_COLUMNS, *cells]) for i in range(5)]

    def line(values: tuple[str, ...], state_style: str = "") -> Text:
        text = Text()
        for i, value in enumerate(values):
            padded = value.rjust(widths[i]) if i == 4 else value.ljust(widths[i])
            text.append(padded, style=state_style if i == 3 else "")
            text.append("  " if i < 4 else "")
        return text

    out.print(Text(f"examflow demo: sitting {SITTING}", style="bold"))
    out.print(line(SUMMARY_COLUMNS), style="bold", soft_wrap=False)
    for r, values in zip(rows, cells, strict=True):
        out.print(line(values, styles.get(r.state, "")), soft_wrap=False)
        if r.note:
            out.print(
                Padding(Text(r.note, style="dim"), (0, 0, 0, NOTE_INDENT), expand=False),
                soft_wrap=False,
            )
    sent = sum(r.sent for r in rows)
    mail = settings.mail_dir.resolve()
    out.print(
        f"{len(rows)} checkpoint runs, {sent} messages sent; mail in {mail}/",
        soft_wrap=False,
        overflow="fold",
    )

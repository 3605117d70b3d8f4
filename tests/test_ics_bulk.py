"""A sitting's .ics for many schools is built cheaply and byte for byte as before; the queue
step composes without holding the database's write lock, so two runs at once both finish."""

import csv
import io
import re
import threading
import time
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from icalendar import Calendar, Event
from sqlmodel import select

from examflow.db import session_scope
from examflow.shipped import shipped_calendars
from models.checkpoints import CheckpointOutcome, evaluate_checkpoint
from models.domain import SHANGHAI, Checkpoint, StageCode
from models.outbox import OutboxMessage
from models.portal_access import PortalLink, token_hash
from models.sitting_calendar import SittingSpec, parse_calendar
from notifications.ics import SittingCalendars, sitting_ics
from notifications.rendering import RenderedMessage

STAMP = datetime(2024, 3, 1, 9, 0, tzinfo=SHANGHAI)
CERTIFICATE = "网店运营推广职业技能等级证书"
OPEN = datetime(2024, 2, 21, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def spec() -> SittingSpec:
    calendar = parse_calendar(shipped_calendars()[0].read_text(encoding="utf-8"))
    return calendar.sitting("2024-1")


def reference_ics(spec: SittingSpec, school: str, is_site: bool) -> bytes:
    """The calendar as the icalendar API builds it, written here independently: all-day
    events per stage window (site stages for sites only; registration as its deadline day),
    one timed event per exam slot, the zone's VTIMEZONE added by icalendar."""
    stages = [
        ("registration", "报名截止", "考试报名", date(2024, 4, 29), date(2024, 4, 29)),
        ("training", "考务及技术人员培训、编排考场", None, date(2024, 5, 1), date(2024, 5, 6)),
        (
            "platform_install",
            "考点设备调试、安装考试平台",
            None,
            date(2024, 4, 18),
            date(2024, 5, 12),
        ),
        ("materials", "下载准考证、部署考场、打印物料", None, date(2024, 5, 6), date(2024, 5, 17)),
    ]
    cal = Calendar()
    cal.add("prodid", "-//examflow//sitting calendar//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", spec.name)
    for code, label, stage_label, first, last in stages:
        if code != "registration" and not is_site:
            continue
        event = Event()
        event.add("uid", f"2024-1-{code}-{school}@examflow")
        event.add("dtstamp", STAMP)
        event.add("summary", f"{spec.name}：{label}")
        event.add("dtstart", first)
        event.add("dtend", last + timedelta(days=1))
        event.add("description", f"{CERTIFICATE} · {stage_label or label}")
        cal.add_component(event)
    for code in ("publicity", "certificates"):
        window = spec.window(StageCode(code))
        label = {"publicity": "成绩公示", "certificates": "颁发证书"}[code]
        event = Event()
        event.add("uid", f"2024-1-{code}-{school}@examflow")
        event.add("dtstamp", STAMP)
        event.add("summary", f"{spec.name}：{label}")
        event.add("dtstart", window.opens or window.close_day)
        event.add("dtend", window.close_day + timedelta(days=1))
        event.add("description", f"{CERTIFICATE} · {label}")
        cal.add_component(event)
    for slot in spec.slots:
        event = Event()
        event.add("uid", f"2024-1-exam-{slot.level.name}-{school}@examflow")
        event.add("dtstamp", STAMP)
        event.add("summary", f"{spec.name}：正式考试（{slot.level}）")
        starts = datetime.combine(date(2024, 5, 18), slot.starts, SHANGHAI)
        event.add("dtstart", starts)
        event.add("dtend", datetime.combine(date(2024, 5, 18), slot.ends, SHANGHAI))
        cal.add_component(event)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def lines(ics: bytes) -> list[str]:
    return ics.decode().replace("\r\n ", "").split("\r\n")


def test_a_site_schools_calendar_has_its_site_stages_the_zone_and_its_own_uids(
    spec: SittingSpec,
) -> None:
    ics = sitting_ics(spec, CERTIFICATE, "S00001", True, STAMP)

    got = lines(ics)
    assert got[:4] == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//examflow//sitting calendar//ZH",
        "X-WR-CALNAME:2024年第一次网店运营推广全国统考",
    ]
    assert got.count("BEGIN:VTIMEZONE") == 1 and "TZID:Asia/Shanghai" in got
    assert [x for x in got if x.startswith("UID:")] == [
        "UID:2024-1-registration-S00001@examflow",
        "UID:2024-1-training-S00001@examflow",
        "UID:2024-1-platform_install-S00001@examflow",
        "UID:2024-1-materials-S00001@examflow",
        "UID:2024-1-publicity-S00001@examflow",
        "UID:2024-1-certificates-S00001@examflow",
        "UID:2024-1-exam-intermediate-S00001@examflow",
        "UID:2024-1-exam-junior-S00001@examflow",
    ]
    assert "SUMMARY:2024年第一次网店运营推广全国统考：报名截止" in got
    assert "DTSTART;VALUE=DATE:20240429" in got and "DTEND;VALUE=DATE:20240430" in got
    assert "DTSTAMP:20240301T010000Z" in got
    assert "DESCRIPTION:网店运营推广职业技能等级证书 · 考试报名" in got
    assert "DTSTART;TZID=Asia/Shanghai:20240518T083000" in got
    assert "DTEND;TZID=Asia/Shanghai:20240518T114500" in got
    assert ics == reference_ics(spec, "S00001", True)


def test_a_non_site_schools_calendar_leaves_out_the_site_stages(spec: SittingSpec) -> None:
    ics = sitting_ics(spec, CERTIFICATE, "S00002", False, STAMP)

    assert [x for x in lines(ics) if x.startswith("UID:")] == [
        "UID:2024-1-registration-S00002@examflow",
        "UID:2024-1-publicity-S00002@examflow",
        "UID:2024-1-certificates-S00002@examflow",
        "UID:2024-1-exam-intermediate-S00002@examflow",
        "UID:2024-1-exam-junior-S00002@examflow",
    ]
    assert ics == reference_ics(spec, "S00002", False)


@pytest.mark.parametrize(
    "school",
    [
        "S00001",
        "12",
        # too long for one unfolded UID line, and a comma icalendar escapes: built in full
        "X" * 60,
        "A,B",
    ],
)
@pytest.mark.parametrize("is_site", [True, False])
def test_calendars_built_for_many_schools_are_the_same_bytes_as_one_built_alone(
    spec: SittingSpec, school: str, is_site: bool
) -> None:
    calendars = SittingCalendars(spec, CERTIFICATE, STAMP)
    calendars.for_school("OTHER1", is_site)  # the shared part made first, for another school

    assert calendars.for_school(school, is_site) == reference_ics(spec, school, is_site)
    assert calendars.for_school(school, is_site) == sitting_ics(
        spec, CERTIFICATE, school, is_site, STAMP
    )


def test_a_calendar_without_a_school_is_everyones(spec: SittingSpec) -> None:
    calendars = SittingCalendars(spec, CERTIFICATE, STAMP)

    assert calendars.for_school(None, False) == reference_ics(spec, "all", False)


# -- the queue step: two runs at once ----------------------------------------------------


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


@pytest.fixture
def many_schools(home: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """The shipped calendar and 300 schools (60 of them sites) in the home's SQLite file,
    whose writers wait at most 1 s for another's write lock (so a lock held while composing
    shows here as it did at national scale with the 60 s wait)."""
    import examflow.db

    monkeypatch.setattr(examflow.db, "SQLITE_BUSY_TIMEOUT_S", 1)
    from adapters.tabular import read_table
    from examflow.synthetic import SCHOOL_HEADER, make_schools
    from models.schools import SCHOOL_COLUMNS, import_schools
    from models.sittings import store_calendar

    schools = make_schools(300, 60)
    calendar = parse_calendar(shipped_calendars()[0].read_text(encoding="utf-8"))
    with session_scope() as session:
        store_calendar(session, calendar, "test", OPEN)
        table = read_table(
            csv_bytes(SCHOOL_HEADER, [s.row() for s in schools]), "s", SCHOOL_COLUMNS
        )
        import_schools(session, table, OPEN)
    return len(schools)


def registration_open() -> CheckpointOutcome:
    from models.sittings import get_sitting

    with session_scope() as session:
        sitting = get_sitting(session, "2024-1")
        return evaluate_checkpoint(session, sitting, StageCode.registration, Checkpoint.open, OPEN)


def test_two_registration_open_queues_at_once_both_finish_and_queue_each_message_once(
    many_schools: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import notifications.compose
    from tasks.checkpoint_tasks import queue

    render = notifications.compose.render_message

    def slow_render(template: str, context: Mapping[str, object]) -> RenderedMessage:
        time.sleep(0.01)  # 300 messages: ~3 s of composing, longer than a writer waits
        return render(template, context)

    monkeypatch.setattr(notifications.compose, "render_message", slow_render)
    outcome = registration_open()
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(n: int) -> None:
        try:
            start.wait()
            results[n] = queue.fn(outcome)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    with session_scope() as session:
        rows = list(session.exec(select(OutboxMessage)))
        stored = set(session.exec(select(PortalLink.token_hash)))
    keys = [r.key for r in rows]
    assert len(keys) == many_schools  # every school hears once that registration opened
    assert len(set(keys)) == len(keys) and all("|once|" in k for k in keys)
    assert all(r.attachment_name and r.attachment_name.endswith(".ics") for r in rows)
    assert results[1] == results[2] == sorted(r.id for r in rows if r.id is not None)
    # each queued message's sign-in link was stored with it
    tokens = [re.search(r"/login\?t=([A-Za-z0-9_-]+)", r.text_body) for r in rows]
    assert all(t is not None for t in tokens)
    assert {token_hash(t.group(1)) for t in tokens if t is not None} <= stored

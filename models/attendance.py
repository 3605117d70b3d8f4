"""Attendance on exam day (出勤): present or absent, per ticket number."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, select

from models.arrangement import SeatAssignment
from models.domain import StageCode, in_utc
from models.importer import Importer, Upload
from models.problems import RejectedFileError, RowProblem
from models.sitting_calendar import SittingSpec, Window
from models.table import Column, Table

PRESENT = {"出席", "到考", "present", "是", "1", "y", "yes"}
ABSENT = {"缺考", "缺席", "absent", "否", "0", "n", "no"}


class AttendanceBase(SQLModel):
    sitting_code: str = Field(foreign_key="sitting.code", index=True)
    ticket_number: str
    present: bool
    recorded_at: datetime


class Attendance(AttendanceBase, table=True):
    __table_args__ = (UniqueConstraint("sitting_code", "ticket_number"),)
    id: int | None = Field(default=None, primary_key=True)


ATTENDANCE_COLUMNS = (
    Column("ticket_number", ("准考证号", "ticket number", "ticket")),
    Column("attendance", ("出勤", "出勤情况", "attendance", "present")),
)


def attendance_window(spec: SittingSpec) -> Window:
    """When a site may upload its attendance sheet: from the exam day (it is taken during the
    exam) until the scores are published, i.e. to the end of the day before publicity opens.
    Scores are imported before then and refuse candidates without attendance; the notice
    dates publicity, not the scores' arrival, so publicity's opening is the dated bound."""
    exam, publicity = spec.window(StageCode.exam), spec.window(StageCode.publicity)
    if publicity.opens is None or publicity.opens <= exam.close_day:  # pragma: no cover
        return exam  # a calendar with publicity on the exam day: never accepted by its check
    return Window(opens=exam.opens, closes=publicity.opens - timedelta(days=1))


def record_attendance(
    session: Session, sitting_code: str, table: Table, as_of: datetime
) -> tuple[int, int]:
    """Record present/absent for each ticket of the file; all rows or none. (present, absent)"""
    tickets = set(
        session.exec(
            select(SeatAssignment.ticket_number).where(SeatAssignment.sitting_code == sitting_code)
        )
    )
    problems: list[RowProblem] = []
    parsed: dict[str, bool] = {}
    for row, v in table.rows:
        number, mark = v["ticket_number"], v["attendance"].strip().casefold()
        if number not in tickets:
            problems.append(
                RowProblem(
                    row, "准考证号 (ticket_number)", f"{number!r} is not a ticket of {sitting_code}"
                )
            )
        present = True if mark in PRESENT else False if mark in ABSENT else None
        if present is None:
            problems.append(
                RowProblem(row, "出勤 (attendance)", f"{v['attendance']!r} is not 出席 or 缺考")
            )
        if number in parsed:
            problems.append(RowProblem(row, "准考证号 (ticket_number)", "listed twice"))
        if present is not None:
            parsed[number] = present
    if problems:
        raise RejectedFileError(problems)
    existing = {
        a.ticket_number: a
        for a in session.exec(select(Attendance).where(Attendance.sitting_code == sitting_code))
    }
    now = in_utc(as_of)
    for number, present in parsed.items():
        row_ = existing.get(number)
        if row_ is None:
            session.add(
                Attendance(
                    sitting_code=sitting_code,
                    ticket_number=number,
                    present=present,
                    recorded_at=now,
                )
            )
        elif row_.present != present:
            row_.present, row_.recorded_at = present, now
            session.add(row_)
    session.flush()
    present_count = sum(parsed.values())
    return present_count, len(parsed) - present_count


@dataclass(frozen=True)
class AttendanceSummary:
    present: int
    absent: int


def _check_and_store_attendance(
    session: Session, table: Table, upload: Upload
) -> AttendanceSummary:
    return AttendanceSummary(
        *record_attendance(session, upload.the_sitting.code, table, upload.as_of)
    )


ATTENDANCE_IMPORTER = Importer(
    "attendance", ATTENDANCE_COLUMNS, _check_and_store_attendance, needs_sitting=True
)

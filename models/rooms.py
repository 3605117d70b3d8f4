"""Exam rooms (考场) of each site. A site without rooms has one room holding its seats."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from models.domain import in_utc
from models.importer import Importer, Upload
from models.problems import RejectedFileError, RowProblem
from models.schools import School, parse_count
from models.table import Column, Table

DEFAULT_ROOM = "第1考场"


class RoomBase(SQLModel):
    site_code: str = Field(foreign_key="school.code", index=True)
    name: str
    seats: int = Field(gt=0)


class Room(RoomBase, table=True):
    __table_args__ = (UniqueConstraint("site_code", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    updated_at: datetime


@dataclass(frozen=True)
class RoomSpec:
    name: str
    seats: int


ROOM_COLUMNS = (
    Column("site_code", ("考点代码", "site code", "site")),
    Column("room", ("考场", "考场名称", "room", "room name")),
    Column("seats", ("座位数", "考位数", "seats")),
)


def rooms_by_site(session: Session) -> dict[str, list[RoomSpec]]:
    """Every site's rooms in name order; a site without rooms gets one holding its seats."""
    rooms: dict[str, list[RoomSpec]] = {}
    for room in session.exec(select(Room).order_by(col(Room.site_code), col(Room.name))):
        rooms.setdefault(room.site_code, []).append(RoomSpec(room.name, room.seats))
    for site in session.exec(select(School).where(col(School.is_site).is_(True))):
        if site.code not in rooms and site.seats:
            rooms[site.code] = [RoomSpec(DEFAULT_ROOM, site.seats)]
    return rooms


def import_rooms(session: Session, table: Table, as_of: datetime) -> tuple[int, int]:
    """Replace the rooms of every site named in the file; all rows or none. (created, sites)"""
    sites = {s.code for s in session.exec(select(School).where(col(School.is_site).is_(True)))}
    problems: list[RowProblem] = []
    parsed: dict[str, dict[str, int]] = {}
    for row, v in table.rows:
        seats = parse_count(v["seats"])
        if v["site_code"] not in sites:
            problems.append(
                RowProblem(row, "考点代码 (site_code)", f"{v['site_code']!r} is not a site")
            )
        if not v["room"]:
            problems.append(RowProblem(row, "考场 (room)", "required"))
        if not seats:
            problems.append(RowProblem(row, "座位数 (seats)", "a whole number > 0"))
        if v["room"] in parsed.get(v["site_code"], {}):
            problems.append(RowProblem(row, "考场 (room)", "listed twice for this site"))
        if seats and v["room"]:
            parsed.setdefault(v["site_code"], {})[v["room"]] = seats
    if problems:
        raise RejectedFileError(problems)
    now = in_utc(as_of)
    for site, rooms in parsed.items():
        for old in session.exec(select(Room).where(Room.site_code == site)):
            session.delete(old)
        session.flush()
        for name, seats in rooms.items():
            session.add(Room(site_code=site, name=name, seats=seats, updated_at=now))
    session.flush()
    return sum(len(r) for r in parsed.values()), len(parsed)


@dataclass(frozen=True)
class RoomImportSummary:
    rooms: int
    sites: int


def _check_and_store_rooms(session: Session, table: Table, upload: Upload) -> RoomImportSummary:
    return RoomImportSummary(*import_rooms(session, table, upload.as_of))


ROOMS_IMPORTER = Importer("rooms", ROOM_COLUMNS, _check_and_store_rooms)

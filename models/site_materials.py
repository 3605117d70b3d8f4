"""A site's materials, built from its arrangement: what each PDF shows (IDs masked here).

Reading and building are apart: `read_sites` takes from the database everything a site's
materials are made of (a `SiteReading`), and `build_site` makes the materials from that and
the sitting alone. So `reading_key`, a hash of the reading and the sitting's row, decides the
materials exactly: a download may remember the materials' digest under it and skip the build
(portal: examflow.materials_server), and the key changes with any re-arrangement, room or
late registration, since each is in the reading.
"""

import hashlib
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models.arrangement import SeatAssignment
from models.domain import SHANGHAI, Level
from models.materials_data import EXAM_RULES, RoomSlot, SiteMaterials, TicketLine
from models.registration import Registration
from models.resident_id import mask_resident_id
from models.rooms import RoomSpec, rooms_by_site
from models.schools import School
from models.sittings import Sitting

FEW_SITES = 32  # up to this many sites, read only their rooms and schools' names

# room, seat, level, ticket number, name, ID number, school code (None: a social candidate)
SeatRow = tuple[str, int, str, str, str, str, str | None]


class SiteReading(NamedTuple):
    """Everything of the database one site's materials are built from."""

    site_code: str
    seats: tuple[SeatRow, ...]  # as read (for a few sites: in the order they were seated)
    rooms: tuple[RoomSpec, ...]  # the site's rooms file (or its one default room)
    names: tuple[tuple[str, str], ...]  # (code, name) of the site and its candidates' schools


def _school_names(session: Session, codes: set[str] | None) -> dict[str, str]:
    """School code -> name, of `codes` only (None: every school)."""
    query = select(School.code, School.name)
    if codes is not None:
        query = query.where(col(School.code).in_(sorted(codes)))
    return dict(session.exec(query).all())


def read_sites(session: Session, sitting: Sitting, site_codes: list[str]) -> dict[str, SiteReading]:
    """Each site's reading, in the order given; in one query for all (a sitting has 1,500
    sites), or, for a few sites (a download), reading only theirs."""
    wanted = set(site_codes)
    few = wanted if len(wanted) <= FEW_SITES else None
    all_rooms = rooms_by_site(session, few)
    query = (
        sa_select(
            col(SeatAssignment.site_code),
            col(SeatAssignment.room),
            col(SeatAssignment.seat),
            col(SeatAssignment.level),
            col(SeatAssignment.ticket_number),
            col(Registration.name),
            col(Registration.id_number),
            col(Registration.school_code),
        )
        .join(Registration, col(Registration.id) == col(SeatAssignment.registration_id))
        .where(col(SeatAssignment.sitting_code) == sitting.code, col(SeatAssignment.seat) > 0)
    )
    if few is not None:  # in a stable order too: the reading is a memo's key
        query = query.where(col(SeatAssignment.site_code).in_(sorted(few))).order_by(
            col(SeatAssignment.id)
        )
    seats: dict[str, list[SeatRow]] = {code: [] for code in site_codes}
    for site, *row in session.execute(query).all():
        if site in wanted:
            seats[site].append(tuple(row))
    schools = {row[6] for rows in seats.values() for row in rows if row[6]}
    names = _school_names(session, None if few is None else wanted | schools)
    return {
        code: SiteReading(
            code,
            tuple(seats[code]),
            tuple(all_rooms.get(code, [])),
            tuple(
                sorted(
                    (school, names[school])
                    for school in {code, *(row[6] for row in seats[code] if row[6])}
                    if school in names
                )
            ),
        )
        for code in site_codes
    }


def reading_key(sitting: Sitting, reading: SiteReading) -> str:
    """A hash of all `build_site` makes a site's materials from: the same key, the same
    materials (in this code's version)."""
    made_of = repr((sorted(sitting.model_dump().items()), reading))
    return hashlib.sha256(made_of.encode("utf-8")).hexdigest()


def build_site(sitting: Sitting, reading: SiteReading) -> SiteMaterials:
    """Rooms in name order, each level's slot in time order, candidates by seat."""
    spec = sitting.spec
    names = dict(reading.names)
    times: dict[str, tuple[datetime, datetime]] = {}
    slots: dict[tuple[str, str], list[TicketLine]] = {}
    for room, seat, level, number, name, id_number, school in reading.seats:
        if level not in times:
            slot = spec.slot(Level(level))
            times[level] = (
                datetime.combine(spec.exam_day, slot.starts, SHANGHAI),
                datetime.combine(spec.exam_day, slot.ends, SHANGHAI),
            )
        starts, ends = times[level]
        slots.setdefault((room, level), []).append(
            TicketLine(
                ticket_number=number,
                name=name,
                masked_id=mask_resident_id(id_number),
                level=level,
                school_name=names.get(school or "", "社会考生"),
                room=room,
                seat=seat,
                starts=starts,
                ends=ends,
            )
        )
    capacity = {room.name: room.seats for room in reading.rooms}
    rooms = [
        RoomSlot(
            room=room,
            level=level,
            starts=lines[0].starts,
            ends=lines[0].ends,
            seats=capacity.get(room, max(line.seat for line in lines)),
            candidates=sorted(lines, key=lambda line: line.seat),
        )
        for (room, level), lines in sorted(
            slots.items(), key=lambda item: (item[0][0], item[1][0].starts)
        )
    ]
    return SiteMaterials(
        sitting_code=sitting.code,
        sitting_name=sitting.name,
        certificate=sitting.certificate,
        exam_day=spec.exam_day,
        site_code=reading.site_code,
        site_name=names.get(reading.site_code, reading.site_code),
        rules=EXAM_RULES,
        rooms=rooms,
    )


def read_site(session: Session, sitting: Sitting, site_code: str) -> SiteReading:
    return read_sites(session, sitting, [site_code])[site_code]


def site_materials(session: Session, sitting: Sitting, site_code: str) -> SiteMaterials:
    """Rooms in name order, each level's slot in time order, candidates by seat."""
    return build_site(sitting, read_site(session, sitting, site_code))


def sitting_materials(
    session: Session, sitting: Sitting, site_codes: list[str]
) -> dict[str, SiteMaterials]:
    """site_materials for many sites at once, in one query (a sitting has 1,500 sites)."""
    readings = read_sites(session, sitting, site_codes)
    return {code: build_site(sitting, reading) for code, reading in readings.items()}

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
from typing import NamedTuple, cast

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models.arrangement import SeatAssignment
from models.domain import SHANGHAI, Level
from models.materials_data import EXAM_RULES, RoomSlot, SiteMaterials, TicketLine
from models.registration import Registration
from models.resident_id import mask_resident_id
from models.rooms import DEFAULT_ROOM, Room, RoomSpec, rooms_by_site
from models.schools import School
from models.sittings import Sitting

FEW_SITES = 32  # up to this many sites, each site's own reading (read_site)

# room, seat, level, ticket number, name, ID number, school code (None: a social candidate)
SeatRow = tuple[str, int, str, str, str, str, str | None]


# A SeatRow's columns, in its order
_SEAT_COLUMNS = (
    col(SeatAssignment.room),
    col(SeatAssignment.seat),
    col(SeatAssignment.level),
    col(SeatAssignment.ticket_number),
    col(Registration.name),
    col(Registration.id_number),
    col(Registration.school_code),
)
_SEAT_OF_REGISTRATION = col(Registration.id) == col(SeatAssignment.registration_id)


class SiteReading(NamedTuple):
    """Everything of the database one site's materials are built from."""

    site_code: str
    seats: tuple[SeatRow, ...]  # as read (by read_site: in the order they were seated)
    rooms: tuple[RoomSpec, ...]  # the site's rooms file (or its one default room)
    names: tuple[tuple[str, str], ...]  # (code, name) of the site and its candidates' schools


def read_sites(session: Session, sitting: Sitting, site_codes: list[str]) -> dict[str, SiteReading]:
    """Each site's reading, in the order given: for many sites in one query (a sitting has
    1,500), for a few (a download) each site's own (read_site)."""
    wanted = set(site_codes)
    if len(wanted) <= FEW_SITES:
        return {code: read_site(session, sitting, code) for code in site_codes}
    all_rooms = rooms_by_site(session)
    query = (
        sa_select(col(SeatAssignment.site_code), *_SEAT_COLUMNS)
        .join(Registration, _SEAT_OF_REGISTRATION)
        .where(col(SeatAssignment.sitting_code) == sitting.code, col(SeatAssignment.seat) > 0)
    )
    seats: dict[str, list[SeatRow]] = {code: [] for code in site_codes}
    for site, *row in session.execute(query).all():
        if site in wanted:
            seats[site].append(tuple(row))
    names = dict(session.exec(select(School.code, School.name)).all())
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


# One site's reading (a download, every time): statements built once, run on the connection.
_SEATS_OF_SITE = (
    sa_select(*_SEAT_COLUMNS)
    .join(Registration, _SEAT_OF_REGISTRATION)
    .where(
        col(SeatAssignment.sitting_code) == bindparam("sitting"),
        col(SeatAssignment.site_code) == bindparam("site"),
        col(SeatAssignment.seat) > 0,
    )
    .order_by(col(SeatAssignment.id))
)
_ROOMS_OF_SITE = (
    sa_select(col(Room.name), col(Room.seats))
    .where(col(Room.site_code) == bindparam("site"))
    .order_by(col(Room.name))
)
_SITE_SEATS = sa_select(col(School.seats)).where(
    col(School.code) == bindparam("site"), col(School.is_site).is_(True)
)
_NAMES_OF = sa_select(col(School.code), col(School.name)).where(
    col(School.code).in_(bindparam("codes", expanding=True))
)


def read_site(session: Session, sitting: Sitting, site_code: str) -> SiteReading:
    """One site's reading: the same as `read_sites` gives it, in four small queries."""
    run = session.connection().execute
    seats = tuple(
        cast(SeatRow, tuple(row))
        for row in run(_SEATS_OF_SITE, {"sitting": sitting.code, "site": site_code})
    )
    rooms = tuple(RoomSpec(name, count) for name, count in run(_ROOMS_OF_SITE, {"site": site_code}))
    if not rooms:
        default = run(_SITE_SEATS, {"site": site_code}).scalar()
        rooms = (RoomSpec(DEFAULT_ROOM, default),) if default else ()
    codes = sorted({site_code, *(row[6] for row in seats if row[6])})
    names = tuple(sorted((code, name) for code, name in run(_NAMES_OF, {"codes": codes})))
    return SiteReading(site_code, seats, rooms, names)


def site_materials(session: Session, sitting: Sitting, site_code: str) -> SiteMaterials:
    """Rooms in name order, each level's slot in time order, candidates by seat."""
    return build_site(sitting, read_site(session, sitting, site_code))


def sitting_materials(
    session: Session, sitting: Sitting, site_codes: list[str]
) -> dict[str, SiteMaterials]:
    """site_materials for many sites at once, in one query (a sitting has 1,500 sites)."""
    readings = read_sites(session, sitting, site_codes)
    return {code: build_site(sitting, reading) for code, reading in readings.items()}

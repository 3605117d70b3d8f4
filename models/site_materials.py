"""A site's materials, built from its arrangement: what each PDF shows (IDs masked here)."""

from datetime import datetime

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models.arrangement import SeatAssignment
from models.domain import SHANGHAI, Level
from models.materials_data import EXAM_RULES, RoomSlot, SiteMaterials, TicketLine
from models.registration import Registration
from models.resident_id import mask_resident_id
from models.rooms import rooms_by_site
from models.schools import School
from models.sittings import Sitting

FEW_SITES = 32  # up to this many sites, read only their rooms and schools' names


def _school_names(session: Session, codes: set[str | None] | None) -> dict[str, str]:
    """School code -> name, of `codes` only (None: every school)."""
    query = select(School.code, School.name)
    if codes is not None:
        query = query.where(col(School.code).in_([c for c in codes if c]))
    return dict(session.exec(query).all())


def site_materials(session: Session, sitting: Sitting, site_code: str) -> SiteMaterials:
    """Rooms in name order, each level's slot in time order, candidates by seat."""
    return sitting_materials(session, sitting, [site_code])[site_code]


def sitting_materials(
    session: Session, sitting: Sitting, site_codes: list[str]
) -> dict[str, SiteMaterials]:
    """site_materials for many sites at once, in one query (a sitting has 1,500 sites)."""
    spec = sitting.spec
    wanted = set(site_codes)
    # A few sites (a download): read only theirs; many (a render): every site at once.
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
    if few is not None:
        query = query.where(col(SeatAssignment.site_code).in_(list(few)))
    rows = [row for row in session.execute(query).all() if row[0] in wanted]
    names = _school_names(session, None if few is None else {*few, *(row[7] for row in rows)})
    by_site: dict[str, dict[tuple[str, str], list[TicketLine]]] = {code: {} for code in site_codes}
    for site, room, seat, level, number, name, id_number, school in rows:
        slot = spec.slot(Level(level))
        starts = datetime.combine(spec.exam_day, slot.starts, SHANGHAI)
        by_site[site].setdefault((room, level), []).append(
            TicketLine(
                ticket_number=number,
                name=name,
                masked_id=mask_resident_id(id_number),
                level=level,
                school_name=names.get(school or "", "社会考生"),
                room=room,
                seat=seat,
                starts=starts,
                ends=datetime.combine(spec.exam_day, slot.ends, SHANGHAI),
            )
        )
    result = {}
    for site_code, slots in by_site.items():
        capacity = {room.name: room.seats for room in all_rooms.get(site_code, [])}
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
        result[site_code] = SiteMaterials(
            sitting_code=sitting.code,
            sitting_name=sitting.name,
            certificate=sitting.certificate,
            exam_day=spec.exam_day,
            site_code=site_code,
            site_name=names.get(site_code, site_code),
            rules=EXAM_RULES,
            rooms=rooms,
        )
    return result

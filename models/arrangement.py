"""Room arrangement (编排考场): every registered candidate gets a room, a seat and a ticket number.

Rules: a room holds one level per slot; levels whose slots overlap in time (2024-3: 初级 and
高级) never share a room; no room is over its seats; borrowing candidates sit at their host
site like its own. The arrangement is deterministic and idempotent: a re-run keeps every seat
that is still valid and only places who is new or displaced.

Ticket numbers (准考证号) are ``<sitting without '-'><level digit><site code><4-digit seq>``,
e.g. ``202411S000010007`` = sitting 2024-1, 初级 (1; 中级 2, 高级 3), site S00001, 7th
初级 candidate of that site. Site codes are unique, so ticket numbers are unique nationwide;
a number is given once and kept, however often rooms are re-arranged.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Index, bindparam, update
from sqlmodel import Field, Session, SQLModel, col, select

from models.bulk import bulk_insert, dbapi_value
from models.domain import Level, in_utc
from models.registration import Registration
from models.rooms import RoomSpec, rooms_by_site
from models.sitting_calendar import SittingSpec
from models.sittings import Sitting

UNSEATED = ("", 0)
LEVEL_DIGITS = {Level.junior.value: "1", Level.intermediate.value: "2", Level.senior.value: "3"}


class SeatAssignmentBase(SQLModel):
    registration_id: int = Field(foreign_key="registration.id", unique=True)
    sitting_code: str = Field(foreign_key="sitting.code", index=True)
    site_code: str
    level: str
    room: str
    seat: int
    ticket_number: str = Field(unique=True)
    ticket_seq: int


class SeatAssignment(SeatAssignmentBase, table=True):
    __table_args__ = (Index("ix_seatassignment_sitting_site", "sitting_code", "site_code"),)
    id: int | None = Field(default=None, primary_key=True)
    arranged_at: datetime


def ticket_number(sitting_code: str, level: str, site_code: str, seq: int) -> str:
    return f"{sitting_code.replace('-', '')}{LEVEL_DIGITS[level]}{site_code}{seq:04d}"


def overlap_groups(spec: SittingSpec, levels: set[str]) -> list[list[str]]:
    """Levels whose slots overlap (transitively) share one group: they split the rooms."""
    ordered = sorted(levels, key=lambda lv: (spec.slot(Level(lv)).starts, lv))
    groups: list[list[str]] = []
    for level in ordered:
        slot = spec.slot(Level(level))
        for group in groups:
            if any(slot.overlaps(spec.slot(Level(other))) for other in group):
                group.append(level)
                break
        else:
            groups.append([level])
    return groups


@dataclass
class SiteArrangement:
    seats: dict[int, tuple[str, int]] = field(default_factory=dict)  # registration -> room, seat
    short: dict[str, int] = field(default_factory=dict)  # level -> candidates without a seat


def arrange_site(
    spec: SittingSpec,
    candidates: dict[str, list[int]],
    rooms: list[RoomSpec],
    previous: dict[int, tuple[str, int]],
) -> SiteArrangement:
    """Seat one site's candidates (registration ids per level, in a stable order).

    Levels whose slots overlap split the site's rooms, each room going whole to one level.
    The quick way first: seats already given stay, and the largest level takes rooms in name
    order. When that leaves someone without a seat, the split is searched exactly
    (`split_rooms`): the fewest candidates without a seat, then the most seats already given
    kept, then the first split in room-name order.
    """
    result = SiteArrangement()
    capacity = {r.name: r.seats for r in rooms}
    level_of = {rid: level for level, rids in candidates.items() for rid in rids}
    for group in overlap_groups(spec, {lv for lv, rids in candidates.items() if rids}):
        owner: dict[str, str] = {}
        for rid, (room, _) in sorted(previous.items()):
            if level_of.get(rid) in group and room in capacity:
                owner.setdefault(room, level_of[rid])
        # the largest level picks rooms first: fewer candidates end up short of a seat
        order = sorted(group, key=lambda lv: (-len(candidates[lv]), lv))
        quick = SiteArrangement()
        for level in order:
            _seat_level(level, candidates[level], rooms, capacity, owner, previous, quick)
        if quick.short and len(group) > 1:
            owner = split_rooms(order, candidates, rooms, previous)
            quick = SiteArrangement()
            for level in order:
                _seat_level(level, candidates[level], rooms, capacity, owner, previous, quick)
        result.seats.update(quick.seats)
        result.short.update(quick.short)
    return result


def split_rooms(
    levels: list[str],
    candidates: dict[str, list[int]],
    rooms: list[RoomSpec],
    previous: dict[int, tuple[str, int]],
) -> dict[str, str]:
    """Give every room whole to one of `levels` (slots that overlap): room -> level.

    Exact: the fewest candidates without a seat, then the most seats already given kept (a
    candidate keeps a seat when its room stays with its level), then the first such split
    in room order with levels in the given order. Two levels (the usual case) split the rooms
    as a subset sum (`_split_two`); more levels take a dynamic programme over the rooms whose
    state is the seats given so far to every level but the last (`_split_many`).
    """
    index = {lv: i for i, lv in enumerate(levels)}
    kept_seats: list[list[set[int]]] = [[set() for _ in levels] for _ in rooms]
    room_index = {r.name: i for i, r in enumerate(rooms)}
    for level in levels if previous else []:
        for rid in candidates[level]:
            name, seat = previous.get(rid, UNSEATED)
            i = room_index.get(name)
            if i is not None and 1 <= seat <= rooms[i].seats:
                kept_seats[i][index[level]].add(seat)
    kept = [[len(s) for s in per_level] for per_level in kept_seats]
    need = [len(candidates[lv]) for lv in levels]
    split = _split_two if len(levels) == 2 else _split_many
    choice = split(need, [r.seats for r in rooms], kept)
    return {room.name: levels[c] for room, c in zip(rooms, choice, strict=True)}


def _split_two(need: list[int], seats: list[int], kept: list[list[int]]) -> list[int]:
    """Rooms to level 0 or 1 (per room), as `split_rooms` orders the splits.

    The seats A that the split gives level 0 decide who goes without one, and the shares A
    the rooms from i on can give are one bitset per i (a Python int): `_fewest_short` finds
    the reachable shares that seat the most. With no seat already given to keep, walking the
    rooms, a room goes to level 0 whenever such a share stays reachable with it there.
    Otherwise the most seats kept that the rooms from i on can add, per share they give
    level 0 (up to the seats they have), is a list per i, and a room goes to level 0
    whenever the most seats kept among those shares stays reachable with it there.
    """
    n = len(seats)
    reach = [1] * (n + 1)  # reach[i]: bit s set when rooms i.. can give level 0 s seats
    for i in range(n - 1, -1, -1):
        reach[i] = reach[i + 1] | (reach[i + 1] << seats[i])
    total = sum(seats)
    lo, hi = _fewest_short(need, total, reach[0])
    choice = []
    a = 0
    if all(k0 == k1 for k0, k1 in kept):  # every split keeps the same seats
        for i in range(n):
            a0 = a + seats[i]  # with room i to level 0, rooms i+1.. must add lo-a0..hi-a0
            start, stop = max(0, lo - a0), hi - a0
            fits = stop >= start and reach[i + 1] >> start & ((1 << (stop - start + 1)) - 1)
            choice.append(0 if fits else 1)
            a = a0 if fits else a
        return choice

    # kept = the seats kept with every room to level 1 + delta[i] for each room i to level 0
    delta = [k0 - k1 for k0, k1 in kept]
    unreachable = -(1 << 60)
    best = [[0] for _ in range(n + 1)]  # best[i][s]: most delta rooms i.. add giving s seats
    for i in range(n - 1, -1, -1):
        after, size, d = best[i + 1], seats[i], delta[i]
        as_zero = [unreachable] * size + ([v + d for v in after] if d else after)
        best[i] = list(map(max, after + [unreachable] * size, as_zero))
    most = max(best[0][lo : hi + 1])
    got = 0
    for i in range(n):
        a0, got0 = a + seats[i], got + delta[i]
        start, stop = max(0, lo - a0), hi - a0
        rest = best[i + 1][start : stop + 1] if stop >= start else []
        fits = max(rest, default=unreachable) + got0 == most
        choice.append(0 if fits else 1)
        if fits:
            a, got = a0, got0
    return choice


def _fewest_short(need: list[int], total: int, reachable: int) -> tuple[int, int]:
    """The interval [lo, hi] of level 0's shares whose reachable ones (bits of `reachable`)
    leave the fewest without a seat among all reachable shares.

    Without a seat with share a: max(0, need0 - a) + max(0, need1 - (total - a)), which is
    c + max(0, p - a) + max(0, a - q) for p, q = need0 and total - need1 in order, c its value
    on [p, q]: convex, so the fewest over the reachable shares is at the reachable share
    nearest below or above a minimiser m in 0..total, and the shares leaving no more than
    that are one interval.
    """

    def short(a: int) -> int:
        return max(0, need[0] - a) + max(0, need[1] - (total - a))

    p, q = sorted((need[0], total - need[1]))
    m = min(max(p, 0), total)
    below = reachable & ((1 << (m + 1)) - 1)  # never 0: share 0 is always reachable
    fewest = short(below.bit_length() - 1)
    above = reachable >> m
    if above:
        fewest = min(fewest, short(m + (above & -above).bit_length() - 1))
    d = fewest - short(p)
    return max(0, p - d), min(total, q + d)


def _split_many(need: list[int], seats: list[int], kept: list[list[int]]) -> list[int]:
    """Rooms to levels (per room), as `split_rooms` orders the splits, for any number of
    levels: a dynamic programme over the rooms whose state is the seats given so far to
    every level but the last (the last takes the rest: a room left unused never helps)."""
    total = sum(seats)
    levels = range(len(need))
    last = len(need) - 1

    def give(given: tuple[int, ...], c: int, size: int) -> tuple[int, ...]:
        return given if c == last else (*given[:c], given[c] + size, *given[c + 1 :])

    def _score(
        after: dict[tuple[int, ...], tuple[int, int]], g: tuple[int, ...], c: int, i: int
    ) -> tuple[int, int]:
        short, lost = after[give(g, c, seats[i])]
        return short, lost - kept[i][c]

    layers: list[set[tuple[int, ...]]] = [{(0,) * last}]  # reachable states before room i
    for size in seats:
        layers.append({give(g, c, size) for g in layers[-1] for c in levels})
    # value[g] = (candidates without a seat, -seats kept) for the rooms from here on
    value = {
        g: (
            sum(max(0, n - s) for n, s in zip(need, g, strict=False))
            + max(0, need[last] - (total - sum(g))),
            0,
        )
        for g in layers[-1]
    }
    values = [value]
    for i in range(len(seats) - 1, -1, -1):
        after = values[-1]
        value = {}
        for g in layers[i]:
            value[g] = min(_score(after, g, c, i) for c in levels)
        values.append(value)
    values.reverse()

    given = (0,) * last
    choice = []
    for i in range(len(seats)):  # walk the optimum, the first choice on ties
        scores = [_score(values[i + 1], given, c, i) for c in levels]
        c = scores.index(min(scores))
        choice.append(c)
        given = give(given, c, seats[i])
    return choice


def _seat_level(
    level: str,
    rids: list[int],
    rooms: list[RoomSpec],
    capacity: dict[str, int],
    owner: dict[str, str],
    previous: dict[int, tuple[str, int]],
    result: SiteArrangement,
) -> None:
    taken: dict[str, set[int]] = defaultdict(set)
    pending = [] if previous else rids
    for rid in rids if previous else []:  # keep every previous seat that is still valid
        room, seat = previous.get(rid, ("", 0))
        if owner.get(room) == level and seat <= capacity[room] and seat not in taken[room]:
            taken[room].add(seat)
            result.seats[rid] = (room, seat)
        else:
            pending.append(rid)
    placed = 0
    owned_first = [r for r in rooms if owner.get(r.name) == level] + [
        r for r in rooms if r.name not in owner
    ]
    for free in owned_first:  # the others in order, each room's free seats in seat order
        if placed == len(pending):
            break
        owner.setdefault(free.name, level)
        held = taken[free.name]
        seats = range(1, free.seats + 1)
        free_seats = [seat for seat in seats if seat not in held] if held else seats
        batch = pending[placed : placed + len(free_seats)]
        result.seats.update(zip(batch, ((free.name, seat) for seat in free_seats), strict=False))
        placed += len(batch)
    if placed < len(pending):
        result.short[level] = len(pending) - placed


@dataclass(frozen=True)
class ArrangementReport:
    seated: int
    new: int
    moved: int
    shortfalls: list[tuple[str, str, int]]  # site, level, candidates without a seat


def arrange(session: Session, sitting: Sitting, as_of: datetime) -> ArrangementReport:
    """Arrange every registered candidate of the sitting; idempotent, keeps valid seats."""
    spec = sitting.spec
    regs = session.exec(
        select(Registration.id, Registration.site_code, Registration.level)
        .where(Registration.sitting_code == sitting.code)
        .order_by(col(Registration.id))
    ).all()
    existing = {
        rid: (room, seat, site, level, number, seq)
        for rid, room, seat, site, level, number, seq in session.execute(
            select(  # type: ignore[call-overload]
                SeatAssignment.registration_id,
                SeatAssignment.room,
                SeatAssignment.seat,
                SeatAssignment.site_code,
                SeatAssignment.level,
                SeatAssignment.ticket_number,
                SeatAssignment.ticket_seq,
            ).where(SeatAssignment.sitting_code == sitting.code)
        )
    }
    by_site: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for rid, site, level in regs:
        assert rid is not None
        by_site[site][level].append(rid)
    rooms = rooms_by_site(session)
    next_seq: dict[tuple[str, str], int] = defaultdict(int)
    for _, _, site, level, _, seq in existing.values():
        next_seq[(site, level)] = max(next_seq[(site, level)], seq)

    now = dbapi_value(session, SeatAssignment.__table__.c.arranged_at, in_utc(as_of))  # type: ignore[attr-defined]
    inserts: list[tuple[object, ...]] = []
    moves: list[dict[str, object]] = []
    shortfalls: list[tuple[str, str, int]] = []
    seated = 0
    for site in sorted(by_site):
        previous = {
            rid: (existing[rid][0], existing[rid][1])
            for level_rids in by_site[site].values()
            for rid in level_rids
            if rid in existing
        }
        plan = arrange_site(spec, by_site[site], rooms.get(site, []), previous)
        shortfalls += [(site, level, n) for level, n in sorted(plan.short.items())]
        for level, rids in sorted(by_site[site].items()):
            for rid in rids:
                place = plan.seats.get(rid)
                if place is None:  # short of seats: keeps its ticket number, loses its seat
                    if rid in existing and previous[rid] != UNSEATED:
                        moves.append({"rid": rid, "room": UNSEATED[0], "seat": UNSEATED[1]})
                    continue
                seated += 1
                if rid not in existing:
                    next_seq[(site, level)] += 1
                    seq = next_seq[(site, level)]
                    inserts.append(
                        (
                            rid,
                            sitting.code,
                            site,
                            level,
                            place[0],
                            place[1],
                            ticket_number(sitting.code, level, site, seq),
                            seq,
                            now,
                        )
                    )
                elif previous[rid] != place:
                    moves.append({"rid": rid, "room": place[0], "seat": place[1]})
    _store(session, inserts, moves)
    return ArrangementReport(seated, len(inserts), len(moves), shortfalls)


def _store(
    session: Session, inserts: list[tuple[object, ...]], moves: list[dict[str, object]]
) -> None:
    table = SeatAssignment.__table__  # type: ignore[attr-defined]
    if moves:  # (room, seat) is not unique in the table, so the order of moves does not matter
        stmt = (
            update(table)
            .where(table.c.registration_id == bindparam("rid"))
            .values(room=bindparam("room"), seat=bindparam("seat"))
        )
        session.connection().execute(stmt, moves)
    bulk_insert(
        session,
        table,
        (
            "registration_id",
            "sitting_code",
            "site_code",
            "level",
            "room",
            "seat",
            "ticket_number",
            "ticket_seq",
            "arranged_at",
        ),
        inserts,
    )
    session.flush()

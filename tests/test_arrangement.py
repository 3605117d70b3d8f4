"""Room arrangement: one level per room and slot, overlapping slots never share, stable tickets."""

import itertools
from datetime import datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from examflow.db import session_scope
from examflow.synthetic import write_csv
from models.arrangement import SeatAssignment, arrange_site, split_rooms, ticket_number
from models.domain import SHANGHAI
from models.rooms import RoomSpec
from models.sitting_calendar import parse_calendar
from models.sittings import get_sitting
from tests.cli import run
from tests.conftest import CALENDAR
from tests.helpers import OPEN, new_id, reg_file

AT = datetime(2024, 6, 8, 23, 0, tzinfo=SHANGHAI)
SPEC_3 = parse_calendar(CALENDAR.read_text(encoding="utf-8")).sitting("2024-3")


def test_overlapping_slots_never_share_a_room_and_rooms_are_never_over_seats() -> None:
    rooms = [RoomSpec("A", 3), RoomSpec("B", 3), RoomSpec("C", 2)]
    candidates = {"初级": [1, 2, 3, 4], "高级": [5, 6], "中级": [7, 8, 9, 10, 11, 12, 13, 14]}
    plan = arrange_site(SPEC_3, candidates, rooms, {})
    assert plan.short == {}
    room_levels: dict[str, set[str]] = {}
    for level, rids in candidates.items():
        for rid in rids:
            room, seat = plan.seats[rid]
            assert 1 <= seat <= {"A": 3, "B": 3, "C": 2}[room]
            room_levels.setdefault(room, set()).add(level)
    for levels in room_levels.values():
        assert not {"初级", "高级"} <= levels  # 13:30–17:45 and 14:00–17:45 overlap
    seats = [plan.seats[r] for r in range(1, 15)]
    afternoon = [plan.seats[r] for r in [1, 2, 3, 4, 5, 6]]
    assert len(set(afternoon)) == 6  # no seat shared in the afternoon
    assert len(set(seats[6:])) == 8  # the morning 中级 reuses the rooms, once each seat


def test_shortfall_names_the_level_and_how_many() -> None:
    plan = arrange_site(
        SPEC_3, {"初级": [1, 2, 3], "高级": [4, 5]}, [RoomSpec("A", 3), RoomSpec("B", 1)], {}
    )
    assert plan.short == {"高级": 1}  # 初级 fills A; 高级 gets B's one seat, not A's


def test_rearrangement_keeps_valid_seats() -> None:
    rooms = [RoomSpec("A", 2), RoomSpec("B", 2)]
    first = arrange_site(SPEC_3, {"中级": [1, 2, 3]}, rooms, {})
    second = arrange_site(SPEC_3, {"中级": [1, 2, 3, 4]}, rooms, first.seats)
    assert all(second.seats[r] == first.seats[r] for r in (1, 2, 3))
    assert second.seats[4] not in [first.seats[r] for r in (1, 2, 3)]


def test_ticket_numbers_encode_sitting_level_and_site() -> None:
    assert ticket_number("2024-3", "高级", "S00001", 7) == "202433S000010007"


def test_arrange_command_seats_everyone_with_unique_stable_tickets_and_the_training_part(
    register_loaded: Path,
) -> None:
    rooms = write_csv(
        register_loaded / "rooms.csv",
        ["考点代码", "考场", "座位数"],
        [["P3", "301", "2"], ["P3", "302", "2"]],
    )
    assert run("rooms", "import", str(rooms)).exit_code == 0
    rows = [["P3", f"甲{i}", new_id(), "初级", ""] for i in range(2)]
    rows += [["P3", f"乙{i}", new_id(), "高级", ""] for i in range(2)]
    rows += [["P1", f"丙{i}", new_id(), "中级", ""] for i in range(3)]
    assert (
        run("register", "2024-3", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    first = run("arrange", "2024-3", "--as-of", "2024-06-08T23:00")
    assert first.exit_code == 0, first.output
    assert "7 seated" in first.stdout
    with session_scope() as session:
        tickets = {
            a.registration_id: (a.ticket_number, a.room, a.seat)
            for a in session.exec(select(SeatAssignment))
        }
    assert len({t for t, _, _ in tickets.values()}) == 7
    again = run("arrange", "2024-3", "--as-of", "2024-06-08T23:30")
    assert again.exit_code == 0 and "0 new, 0 moved" in again.stdout
    with session_scope() as session:
        assert tickets == {
            a.registration_id: (a.ticket_number, a.room, a.seat)
            for a in session.exec(select(SeatAssignment))
        }
        sitting = get_sitting(session, "2024-3")
        from models.stages import rooms_arranged

        assert rooms_arranged(session, sitting, AT) == []


def test_a_site_that_cannot_seat_everyone_blocks_training(register_loaded: Path) -> None:
    # P4 has 2 seats and no room list: one default room of 2; 初级 + 高级 overlap → one is short
    rows = [["P4", "甲", new_id(), "初级", ""], ["P4", "乙", new_id(), "高级", ""]]
    assert (
        run("register", "2024-3", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    result = run("arrange", "2024-3", "--as-of", "2024-06-08T23:00")
    assert result.exit_code == 1
    assert "P4 高级: 1 candidate(s) without a seat" in result.output
    with session_scope() as session:
        from models.stages import rooms_arranged

        missing = rooms_arranged(session, get_sitting(session, "2024-3"), AT)
    assert [str(m) for m in missing] == [
        "organiser: P4 高级: 1 candidate(s) without a room and seat"
    ]


def test_full_rooms_are_used_exactly_and_afternoon_levels_split_the_rooms() -> None:
    rooms = [RoomSpec(f"R{i}", 30) for i in range(4)]
    candidates = {
        "初级": list(range(1, 61)),
        "中级": list(range(61, 181)),
        "高级": list(range(181, 201)),
    }
    plan = arrange_site(SPEC_3, candidates, rooms, {})
    assert plan.short == {}
    afternoon_rooms = {lv: {plan.seats[r][0] for r in candidates[lv]} for lv in ("初级", "高级")}
    assert len(afternoon_rooms["初级"]) == 2 and len(afternoon_rooms["高级"]) == 1
    assert not afternoon_rooms["初级"] & afternoon_rooms["高级"]
    assert len({plan.seats[r] for r in candidates["中级"]}) == 120  # all 4 rooms, full


def _seat_everyone_in_rooms(register_loaded: Path, rooms: list[tuple[str, int]]) -> str:
    rooms_file = write_csv(
        register_loaded / "rooms.csv",
        ["考点代码", "考场", "座位数"],
        [["P3", name, str(seats)] for name, seats in rooms],
    )
    assert run("rooms", "import", str(rooms_file)).exit_code == 0
    rows = [["P3", f"高{i}", new_id(), "高级", ""] for i in range(8)]
    rows += [["P3", f"初{i}", new_id(), "初级", ""] for i in range(6)]
    registered = run("register", "2024-3", str(reg_file(register_loaded, rows)), "--as-of", OPEN)
    assert registered.exit_code == 0, registered.output
    result = run("arrange", "2024-3", "--as-of", "2024-06-08T23:00")
    assert result.exit_code == 0, result.output
    return result.stdout


def test_overlapping_levels_are_seated_when_the_6_seat_room_is_named_first(
    register_loaded: Path,
) -> None:
    # 高级 (8) fits only in the two 4-seat rooms, 初级 (6) only in the 6-seat room
    out = _seat_everyone_in_rooms(register_loaded, [("201", 6), ("202", 4), ("203", 4)])
    assert "14 seated" in out
    with session_scope() as session:
        rooms = {(a.level, a.room) for a in session.exec(select(SeatAssignment))}
    assert rooms == {("初级", "201"), ("高级", "202"), ("高级", "203")}


def test_overlapping_levels_are_seated_when_the_6_seat_room_is_named_last(
    register_loaded: Path,
) -> None:
    out = _seat_everyone_in_rooms(register_loaded, [("201", 4), ("202", 4), ("203", 6)])
    assert "14 seated" in out
    with session_scope() as session:
        rooms = {(a.level, a.room) for a in session.exec(select(SeatAssignment))}
    assert rooms == {("初级", "203"), ("高级", "201"), ("高级", "202")}


def test_a_seat_already_given_is_kept_when_the_rooms_must_be_split_differently() -> None:
    rooms = [RoomSpec("201", 6), RoomSpec("202", 4), RoomSpec("203", 4)]
    candidates = {"高级": list(range(1, 9)), "初级": list(range(9, 15))}
    plan = arrange_site(SPEC_3, candidates, rooms, {1: ("202", 3)})
    assert plan.short == {}
    assert plan.seats[1] == ("202", 3)
    assert {plan.seats[r][0] for r in range(9, 15)} == {"201"}
    assert {plan.seats[r][0] for r in range(1, 9)} == {"202", "203"}


def test_a_seat_already_given_moves_when_everyone_cannot_be_seated_otherwise() -> None:
    rooms = [RoomSpec("201", 6), RoomSpec("202", 4), RoomSpec("203", 4)]
    candidates = {"高级": list(range(1, 9)), "初级": list(range(9, 15))}
    plan = arrange_site(SPEC_3, candidates, rooms, {1: ("201", 1)})
    assert plan.short == {}
    assert plan.seats[1][0] in {"202", "203"}
    assert {plan.seats[r][0] for r in range(9, 15)} == {"201"}


def test_when_some_must_go_without_a_seat_the_fewest_do() -> None:
    rooms = [RoomSpec("201", 6), RoomSpec("202", 4), RoomSpec("203", 4)]
    # 15 candidates for 14 seats: 初级 in 201 leaves one 初级 short; 高级 in 201 + 202, three
    plan = arrange_site(SPEC_3, {"高级": list(range(1, 9)), "初级": list(range(9, 16))}, rooms, {})
    assert plan.short == {"初级": 1}
    assert {plan.seats[r][0] for r in range(1, 9)} == {"202", "203"}


def test_a_few_dozen_rooms_of_different_sizes_are_split_exactly() -> None:
    # 36 rooms of 21..56 seats, 1,386 in all; 初级 and 高级 leave 1 seat free, so 高级 needs
    # rooms of 517 or 518 seats together, e.g. the rooms of 48..56 seats, 21 and 28
    rooms = [RoomSpec(f"R{i:02d}", 21 + i) for i in range(36)]
    senior, junior = 517, 1386 - 517 - 1
    candidates = {"初级": list(range(junior)), "高级": list(range(junior, junior + senior))}
    plan = arrange_site(SPEC_3, candidates, rooms, {})
    assert plan.short == {}


def _brute_force_split(
    levels: list[str],
    candidates: dict[str, list[int]],
    rooms: list[RoomSpec],
    previous: dict[int, tuple[str, int]],
) -> dict[str, str]:
    """Every way to give each room to one level, in room order with levels in the given order
    (itertools.product's order): the first with the fewest without a seat, then most kept."""
    best: tuple[int, int] | None = None
    best_split: dict[str, str] = {}
    for choice in itertools.product(levels, repeat=len(rooms)):
        split = {room.name: level for room, level in zip(rooms, choice, strict=True)}
        short = 0
        for level in levels:
            seats = sum(room.seats for room in rooms if split[room.name] == level)
            short += max(0, len(candidates[level]) - seats)
        kept = 0
        for level in levels:
            places = set()  # a seat counts once, however many of the level held it
            for rid in candidates[level]:
                room_name, seat = previous.get(rid, ("", 0))
                size = {room.name: room.seats for room in rooms}.get(room_name)
                if size is not None and split[room_name] == level and 1 <= seat <= size:
                    places.add((room_name, seat))
            kept += len(places)
        if best is None or (short, -kept) < best:
            best, best_split = (short, -kept), split
    return best_split


@st.composite
def _small_sites(
    draw: st.DrawFn, level_count: int = 2, most_rooms: int = 8
) -> tuple[list[str], dict[str, list[int]], list[RoomSpec], dict[int, tuple[str, int]]]:
    levels = ["高级", "初级", "中级"][:level_count]
    sizes = draw(st.lists(st.integers(0, 9), min_size=0, max_size=most_rooms))
    rooms = [RoomSpec(f"{i:03d}", seats) for i, seats in enumerate(sizes)]
    total = sum(sizes)
    candidates: dict[str, list[int]] = {}
    rid = 0
    for level in levels:
        n = draw(st.integers(0, total + 3))
        candidates[level] = list(range(rid, rid + n))
        rid += n
    previous: dict[int, tuple[str, int]] = {}
    if rooms:
        for r in range(rid):
            if draw(st.booleans()):
                room = draw(st.sampled_from([*rooms, RoomSpec("gone", 3)]))
                previous[r] = (room.name, draw(st.integers(0, room.seats + 1)))
    return levels, candidates, rooms, previous


@settings(max_examples=400, deadline=None)
@given(_small_sites())
def test_the_exact_split_of_two_levels_is_the_first_best_of_every_possible_split(
    site: tuple[list[str], dict[str, list[int]], list[RoomSpec], dict[int, tuple[str, int]]],
) -> None:
    levels, candidates, rooms, previous = site
    expected = _brute_force_split(levels, candidates, rooms, previous)
    assert split_rooms(levels, candidates, rooms, previous) == expected


@settings(max_examples=400, deadline=None)
@given(_small_sites())
def test_the_exact_split_without_seats_already_given_is_the_first_best_split(
    site: tuple[list[str], dict[str, list[int]], list[RoomSpec], dict[int, tuple[str, int]]],
) -> None:
    levels, candidates, rooms, _ = site
    expected = _brute_force_split(levels, candidates, rooms, {})
    assert split_rooms(levels, candidates, rooms, {}) == expected


@settings(max_examples=150, deadline=None)
@given(_small_sites(level_count=3, most_rooms=6))
def test_the_exact_split_of_three_overlapping_levels_is_the_first_best_split(
    site: tuple[list[str], dict[str, list[int]], list[RoomSpec], dict[int, tuple[str, int]]],
) -> None:
    levels, candidates, rooms, previous = site
    expected = _brute_force_split(levels, candidates, rooms, previous)
    assert split_rooms(levels, candidates, rooms, previous) == expected

"""Missing items are data (party, kind, stage, item code, count); their text is rendered.

`status --json` keeps its `missing` strings byte for byte and lists the same items as data;
whom a reminder goes to is decided from the items, never from their wording.
"""

import json
from datetime import datetime
from pathlib import Path

from examflow.db import session_scope
from examflow.synthetic import SCHOOL_HEADER, write_csv
from models.checkpoints import CheckpointOutcome, MissingItem, plan_messages
from models.condition import Missing, Owed, PartyKind, describe
from models.domain import SHANGHAI, Checkpoint, StageCode, StageState
from models.sittings import get_sitting
from models.stages import items_for_party
from tests.cli import run
from tests.helpers import OPEN, SCHOOLS, new_id, reg_file


def stages(sitting: str, as_of: str) -> dict[str, dict[str, list[object]]]:
    result = run("status", sitting, "--as-of", as_of, "--json")
    assert result.exit_code == 0, result.output
    return {s["stage"]: s for s in json.loads(result.stdout)["stages"]}


def item(party: str, kind: str, stage: str, code: str, count: int = 1, **detail: object) -> dict:
    return {
        "party": party,
        "party_kind": kind,
        "stage": stage,
        "item": code,
        "count": count,
        "detail": detail,
    }


def test_status_json_keeps_its_missing_strings_and_lists_the_same_items_as_data(
    register_loaded: Path,
) -> None:
    rows = [["P3", f"乙{i}", new_id(), "中级", ""] for i in range(3)]
    assert (
        run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    reduced = [row[:] for row in SCHOOLS]
    reduced[3][4] = "2"  # P3's pilot scale cut to 2 after it registered 3
    write_csv(register_loaded / "s2.csv", SCHOOL_HEADER, reduced)
    assert run("schools", "import", str(register_loaded / "s2.csv")).exit_code == 0
    assert run("mark", "2024-1", "P3", "affairs_trained", "--as-of", "2024-05-02").exit_code == 0

    at = stages("2024-1", "2024-05-01T09:00")
    assert at["registration"]["missing"] == ["P3: 3 candidates in 2024, pilot scale 2"]
    assert at["registration"]["items"] == [
        item("P3", "school", "registration", "over_pilot_scale", 3, year=2024, pilot_scale=2)
    ]
    assert at["training"]["missing"] == [
        "P3: 考务管理人员已参加培训",  # recorded on 05-02, after this as_of
        "P3: 技术人员已参加培训",
        "organiser: rooms not arranged yet",
    ]
    assert at["training"]["items"] == [
        item("P3", "site", "training", "affairs_trained"),
        item("P3", "site", "training", "tech_trained"),
        item("organiser", "organiser", "training", "rooms_not_arranged", 3),
    ]
    assert at["publicity"]["missing"] == ["organiser: scores not published yet"]
    assert at["publicity"]["items"] == [
        item("organiser", "organiser", "publicity", "scores_unpublished")
    ]


def test_a_seat_shortfall_and_missing_attendance_carry_site_level_and_count(
    register_loaded: Path,
) -> None:
    # P4 has 2 seats in one default room: 初级 and 高级 overlap, so 高级 has no seat
    rows = [["P4", "甲", new_id(), "初级", ""], ["P4", "乙", new_id(), "高级", ""]]
    assert (
        run("register", "2024-3", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    assert run("arrange", "2024-3", "--as-of", "2024-06-08T23:00").exit_code == 1
    at = stages("2024-3", "2024-07-01T09:00")
    assert (
        at["training"]["missing"][-1]
        == "organiser: P4 高级: 1 candidate(s) without a room and seat"
    )
    assert at["training"]["items"][-1] == item(
        "organiser", "organiser", "training", "no_seat", 1, site="P4", level="高级"
    )
    assert at["exam"]["missing"][-1] == "P4: attendance not recorded for 1 candidate(s)"
    assert at["exam"]["items"][-1] == item("P4", "site", "exam", "no_attendance", 1)


def test_each_item_code_renders_as_people_read_it() -> None:
    def text(code: str, count: int = 1, **detail: str | int | list[str]) -> str:
        kind = PartyKind.school
        return describe(Missing(party="P1", party_kind=kind, stage=StageCode.exam, item=code,
                                count=count, detail=detail))  # fmt: skip

    assert text("mock_passed") == "模考及平台测试已通过"
    assert text(Owed.not_a_site, 4) == "4 candidate(s) registered at a school that is not a site"
    assert text(Owed.unscored, 2) == "2 present candidate(s) without a score"
    assert text(Owed.results_undelivered) == "results not delivered to the school yet"
    assert text(Owed.unresolved_review, 1) == "1 review item(s) not resolved"
    assert (
        text(Owed.unsigned_batch, 2, unsigned=["organiser", "school"])
        == "2 名合格考生尚未生成电子证书（待签发：培训评价组织、学校）"
    )
    assert text(Owed.unsigned_batch, 1, unsigned=["school"]) == (
        "1 名合格考生尚未生成电子证书（待签发：学校）"
    )
    assert text(Owed.certificates_not_issued, 5) == "5 名合格考生尚未生成电子证书"
    assert str(Missing(party="P1", party_kind=PartyKind.site, stage=StageCode.training,
                       item="tech_trained")) == "P1: 技术人员已参加培训"  # fmt: skip


def test_items_for_party_are_exactly_what_that_school_or_site_owes_per_stage(
    register_loaded: Path,
) -> None:
    rows = [["P1", "甲", new_id(), "初级", ""], ["P3", "乙", new_id(), "中级", ""]]
    assert (
        run("register", "2024-1", str(reg_file(register_loaded, rows)), "--as-of", OPEN).exit_code
        == 0
    )
    for fact in ("affairs_trained", "tech_trained", "platform_installed"):
        assert run("mark", "2024-1", "P1", fact, "--as-of", "2024-05-02").exit_code == 0
    with session_scope() as session:
        owed = items_for_party(
            session, get_sitting(session, "2024-1"), "P1", datetime(2024, 5, 3, tzinfo=SHANGHAI)
        )
    assert list(owed) == [StageCode.platform_install, StageCode.materials, StageCode.exam]
    assert [m.item for m in owed[StageCode.platform_install]] == ["mock_passed"]
    assert {m.party for ms in owed.values() for m in ms} == {"P1"}
    assert [str(m) for m in owed[StageCode.materials]][:1] == ["P1: 准考证已下载"]


def certificates_outcome(items: list[MissingItem]) -> CheckpointOutcome:
    return CheckpointOutcome(
        sitting="2024-1",
        sitting_name="2024年第一次",
        stage=StageCode.certificates,
        checkpoint=Checkpoint.remind,
        as_of=datetime(2024, 6, 3, 9, tzinfo=SHANGHAI),
        state=StageState.open,
        opens=datetime(2024, 6, 1, tzinfo=SHANGHAI),
        closes=datetime(2024, 6, 30, 23, 59, tzinfo=SHANGHAI),
        parties_total=2,
        party_kind="schools",
        missing=items,
    )


def batch(school: str, *unsigned: str) -> MissingItem:
    return MissingItem(
        party=school,
        party_name=school,
        party_kind=PartyKind.school,
        stage=StageCode.certificates,
        item=Owed.unsigned_batch,
        count=2,
        detail={"unsigned": list(unsigned)},
    )


def test_a_certificates_reminder_goes_only_to_schools_whose_own_signature_is_missing(
    register_loaded: Path,
) -> None:
    outcome = certificates_outcome([batch("P1", "organiser"), batch("P3", "organiser", "school")])
    with session_scope() as session:
        planned = plan_messages(session, get_sitting(session, "2024-1"), outcome, "ops@x.cn")
    (message,) = planned
    assert message.recipient_ref == "P3" and message.to_addr == "a@p3.edu.cn"
    missing = message.context["missing"]
    assert isinstance(missing, list)
    assert missing[0] == "2 名合格考生尚未生成电子证书（待签发：培训评价组织、学校）"

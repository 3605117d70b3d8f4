"""What one school or site owes (the portal's page) is evaluated for that party alone, and
is exactly what the whole sitting's evaluation (flows, reminders, `status`) lists for it."""

from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import col, select

from examflow.db import session_scope
from examflow.synthetic import SCHOOL_HEADER, write_csv
from models.arrangement import SeatAssignment
from models.condition import ORGANISER, Missing, Owed, PartyKind, describe_zh
from models.domain import SHANGHAI, StageCode
from models.facts import SiteFact
from models.go_no_go import GoNoGo, record_decision
from models.registration import Registration
from models.schools import School
from models.scores import publish
from models.sittings import get_sitting
from models.stages import CONDITIONS, items_for_party
from tests.cli import run
from tests.helpers import OPEN, SCHOOLS, new_id, reg_file

MOMENTS = [
    datetime(2024, 4, 25, 12, tzinfo=SHANGHAI),  # registration open
    datetime(2024, 5, 1, 9, tzinfo=SHANGHAI),  # training
    datetime(2024, 5, 30, 12, tzinfo=SHANGHAI),  # publicity, a review open
    datetime(2024, 6, 1, 12, tzinfo=SHANGHAI),  # certificates, one batch half signed
]
PARTIES = [row[0] for row in SCHOOLS] + [ORGANISER, "social", "nobody"]


def seed(folder: Path) -> dict[str, str]:
    """2024-1 in several states: P3 a site with its own 3 candidates, N1's and a social
    candidates (己 scored); P1 a site with one candidate, later no longer a site
    (not_a_site); P3's pilot scale cut below its candidates; P3's facts partly marked;
    attendance of one candidate not recorded; scores (one present candidate unscored),
    published; a review open; the organiser's signature only."""
    assert run("sites", "agree", "P3", "N1", "2024-1").exit_code == 0
    assert run("sites", "agree", "P3", "social", "2024-1").exit_code == 0
    rows = [["P3", f"甲{i}", new_id(), "初级", ""] for i in range(3)]
    rows += [["P1", "乙", new_id(), "中级", ""], ["N1", "丙", new_id(), "初级", "P3"]]
    rows += [["", n, new_id(), "初级", "P3"] for n in ("丁", "戊", "己")]
    result = run("register", "2024-1", str(reg_file(folder, rows)), "--as-of", OPEN)
    assert result.exit_code == 0, result.output
    assert run("arrange", "2024-1", "--as-of", "2024-05-06T23:00").exit_code == 0
    for fact in ("affairs_trained", "platform_installed", "tickets_downloaded"):
        assert run("mark", "2024-1", "P3", fact, "--as-of", "2024-04-30T09:00").exit_code == 0
    with session_scope() as session:
        tickets = dict(
            session.exec(
                select(Registration.name, SeatAssignment.ticket_number).join(
                    SeatAssignment, col(SeatAssignment.registration_id) == col(Registration.id)
                )
            ).all()
        )
    sheet = [[t, "缺考" if n == "甲2" else "出席"] for n, t in tickets.items() if n != "戊"]
    write_csv(folder / "att.csv", ["准考证号", "出勤"], sheet)
    assert run("attendance", "2024-1", str(folder / "att.csv")).exit_code == 0
    scores = [[tickets[n], s] for n, s in (("甲0", "59"), ("甲1", "88"), ("乙", "60"))]
    scores += [[tickets["丙"], "75"], [tickets["己"], "80"]]  # 丁 (present) has none yet
    write_csv(folder / "scores.csv", ["准考证号", "成绩"], scores)
    result = run("scores", "import", "2024-1", str(folder / "scores.csv"))
    assert result.exit_code == 0, result.output
    with session_scope() as session:
        publish(session, "2024-1", datetime(2024, 5, 29, 9, tzinfo=SHANGHAI))
    review = write_csv(folder / "review.csv", ["准考证号"], [[tickets["甲0"]]])
    assert (
        run("review", "file", "2024-1", "P3", str(review), "--as-of", "2024-05-30").exit_code == 0
    )
    key = folder / "organiser.pem"
    assert run("keys", "new", "--party", "organiser", "-o", str(key)).exit_code == 0
    signed = run(
        "sign", "2024-1", "--party", "organiser", "--key", str(key), "--as-of", "2024-06-01T10:00"
    )
    assert signed.exit_code == 0, signed.output
    changed = [row[:] for row in SCHOOLS]
    changed[3][4] = "2"  # P3's pilot scale cut to 2 after it registered 3
    write_csv(folder / "s2.csv", SCHOOL_HEADER, changed)
    imported = run("schools", "import", str(folder / "s2.csv"))
    assert imported.exit_code == 0, imported.output
    with session_scope() as session:  # P1 no longer a site: its candidate is not at one
        p1 = session.get(School, "P1")
        assert p1 is not None
        p1.is_site = False
        session.add(p1)
    return tickets


def test_items_for_each_party_are_the_whole_evaluation_filtered_by_party(
    register_loaded: Path,
) -> None:
    seed(register_loaded)
    owing: set[tuple[str, StageCode, str]] = set()
    with session_scope() as session:
        sitting = get_sitting(session, "2024-1")
        for as_of in MOMENTS:
            whole = {stage: CONDITIONS[stage](session, sitting, as_of) for stage in StageCode}
            for party in PARTIES:
                expected = {
                    stage: mine
                    for stage, condition in whole.items()
                    if (mine := [m for m in condition.missing if m.party == party])
                }
                assert items_for_party(session, sitting, party, as_of) == expected, (party, as_of)
                owing |= {(party, s, m.item) for s, ms in expected.items() for m in ms}
    # the comparison covered every kind of party and rule, not empty lists
    assert {
        ("P1", StageCode.registration, Owed.not_a_site),
        ("P3", StageCode.registration, Owed.over_pilot_scale),
        ("P3", StageCode.training, SiteFact.tech_trained),
        ("P1", StageCode.materials, SiteFact.rooms_laid_out),
        ("P3", StageCode.exam, Owed.no_attendance),
        (ORGANISER, StageCode.publicity, Owed.unscored),
        ("P3", StageCode.publicity, Owed.results_undelivered),
        ("P3", StageCode.publicity, Owed.unresolved_review),
        ("N1", StageCode.publicity, Owed.results_undelivered),
        ("P3", StageCode.certificates, Owed.unsigned_batch),
        ("N1", StageCode.certificates, Owed.unsigned_batch),
    } <= owing


def test_the_organiser_owes_a_held_sites_candidates_and_a_waived_site_owes_no_facts(
    register_loaded: Path,
) -> None:
    tickets = seed(register_loaded)
    exam_eve = datetime(2024, 5, 17, 18, tzinfo=SHANGHAI)
    with session_scope() as session:
        sitting = get_sitting(session, "2024-1")
        for site, choice in (("P3", GoNoGo.hold), ("P1", GoNoGo.go)):
            record_decision(
                session,
                sitting,
                site,
                choice,
                reason="机房停电",
                decided_by="王运维",
                as_of=exam_eve,
                via="cli",
            )
    with session_scope() as session:
        sitting, after = get_sitting(session, "2024-1"), datetime(2024, 5, 19, tzinfo=SHANGHAI)
        whole = CONDITIONS[StageCode.exam](session, sitting, after).missing
        for party in PARTIES:
            mine = items_for_party(session, sitting, party, after).get(StageCode.exam, [])
            assert mine == [m for m in whole if m.party == party], party
        organiser = items_for_party(session, sitting, ORGANISER, after)[StageCode.exam]
        p1_after = items_for_party(session, sitting, "P1", after)
        p1_before = items_for_party(session, sitting, "P1", exam_eve - timedelta(hours=1))
    # 戊 (P3, no attendance) is the organiser's to re-seat; P1's go waives its missing facts
    assert [(m.item, m.detail["site"], m.detail["tickets"]) for m in organiser] == [
        (Owed.held_site, "P3", [tickets["戊"]])
    ]
    assert p1_before[StageCode.exam] and StageCode.exam not in p1_after


def test_a_social_candidates_results_are_owed_to_their_host_site(register_loaded: Path) -> None:
    tickets = seed(register_loaded)
    assert "丁" in tickets
    with session_scope() as session:
        sitting = get_sitting(session, "2024-1")
        at = MOMENTS[-1]
        host = items_for_party(session, sitting, "P3", at)
        assert [m.item for m in host[StageCode.publicity]] == [
            Owed.results_undelivered,
            Owed.unresolved_review,
        ]
        assert host[StageCode.certificates][0].count == 2  # 甲1 (88) and 己 (80)
        assert items_for_party(session, sitting, "social", at) == {}


def item(code: str, count: int = 1, **detail: str | int | list[str]) -> Missing:
    kind = PartyKind.site if code in set(SiteFact) or code == Owed.no_attendance else None
    return Missing(
        party="P3",
        party_kind=kind or PartyKind.school,
        stage=StageCode.exam,
        item=code,
        count=count,
        detail=detail,
    )


def test_each_item_code_has_its_chinese_wording_for_the_portal() -> None:
    cases = {
        Owed.not_a_site: (item(Owed.not_a_site, 3), "3 名考生报名的学校不是考点"),
        Owed.over_pilot_scale: (
            item(Owed.over_pilot_scale, 12, year=2024, pilot_scale=10),
            "2024 年报名 12 人，超过试点规模 10 人",
        ),
        Owed.rooms_not_arranged: (item(Owed.rooms_not_arranged, 5), "尚未编排考场"),
        Owed.no_seat: (
            item(Owed.no_seat, 2, site="P4", level="高级"),
            "P4 高级：2 名考生尚未安排考场和座位",
        ),
        Owed.no_attendance: (item(Owed.no_attendance, 18), "18 名考生尚未登记出勤"),
        Owed.unscored: (item(Owed.unscored, 4), "4 名出席考生尚无成绩"),
        Owed.scores_unpublished: (item(Owed.scores_unpublished), "成绩尚未公示"),
        Owed.results_undelivered: (item(Owed.results_undelivered), "成绩尚未发送给学校"),
        Owed.unresolved_review: (item(Owed.unresolved_review, 2), "2 项成绩复核尚未处理"),
        Owed.unsigned_batch: (
            item(Owed.unsigned_batch, 3, unsigned=["organiser", "school"]),
            "3 名合格考生尚未生成电子证书（待签发：培训评价组织、学校）",
        ),
        Owed.certificates_not_issued: (
            item(Owed.certificates_not_issued, 3),
            "3 名合格考生尚未生成电子证书",
        ),
        Owed.nobody_registered: (
            item(Owed.nobody_registered),
            "尚未为学生报名（报名截止后将无法补报名）",
        ),
        Owed.no_host_site: (
            item(Owed.no_host_site),
            "非考点院校须与邻近考点协商借考，或在截止前申报考点",
        ),
        Owed.held_site: (
            item(Owed.held_site, 6, site="P4"),
            "P4 暂停开考：6 名考生须改派考场、转入以后批次或记为缺考",
        ),
        SiteFact.affairs_trained: (item(SiteFact.affairs_trained), "考务管理人员已参加培训"),
        SiteFact.rooms_laid_out: (
            item(SiteFact.rooms_laid_out),
            "考场已按《考务工作执行手册》布置",
        ),
    }
    assert set(cases) >= set(Owed)
    for code, (missing, expected) in cases.items():
        assert describe_zh(missing) == expected, code
    assert str(item(Owed.no_attendance, 18)) == "P3: attendance not recorded for 18 candidate(s)"

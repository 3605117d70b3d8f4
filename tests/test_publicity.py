"""Scores, publicity and per-school review requests: window edges, ownership, absent candidates."""

from datetime import datetime
from pathlib import Path

from sqlmodel import select

from examflow.db import session_scope
from examflow.synthetic import write_csv
from models.domain import SHANGHAI, StageCode, StageState
from models.scores import Score, publish
from models.sittings import get_sitting
from models.stages import evaluate_stage
from notifications.sink import MailSink
from tests.cli import run
from tests.helpers import new_id
from tests.mailbox import received, text_of

LAST_SECOND = "2024-05-31T23:59:59"
FIRST_SECOND_AFTER = "2024-06-01T00:00:00"


def test_absent_candidates_get_no_score(register_loaded: Path, scored: dict[str, str]) -> None:
    write_csv(register_loaded / "s2.csv", ["准考证号", "成绩"], [[scored["甲2"], "70"]])
    result = run("scores", "import", "2024-1", str(register_loaded / "s2.csv"))
    assert result.exit_code == 1 and "was absent (缺考)" in result.stderr


def test_pass_mark_decides_the_result(scored: dict[str, str]) -> None:
    with session_scope() as session:
        passed = dict(session.exec(select(Score.ticket_number, Score.passed)).all())
    assert passed[scored["甲0"]] is False and passed[scored["乙"]] is True  # 59 / 60


def review_file(folder: Path, tickets: list[str], name: str = "review.csv") -> str:
    return str(write_csv(folder / name, ["准考证号", "复核理由"], [[t, "复核"] for t in tickets]))


def test_review_window_edges_last_second_in_first_second_out(
    register_loaded: Path, scored: dict[str, str]
) -> None:
    path = review_file(register_loaded, [scored["甲0"]])
    before = run("review", "file", "2024-1", "P3", path, "--as-of", "2024-05-28T23:59:59")
    assert before.exit_code == 1 and "only during publicity" in before.stderr
    late = run("review", "file", "2024-1", "P3", path, "--as-of", FIRST_SECOND_AFTER)
    assert late.exit_code == 1 and "only during publicity" in late.stderr
    ok = run("review", "file", "2024-1", "P3", path, "--as-of", LAST_SECOND)
    assert ok.exit_code == 0 and "review request 1 filed by P3" in ok.stdout


def test_a_school_cannot_review_another_schools_candidates_nor_a_candidate_alone(
    register_loaded: Path, scored: dict[str, str]
) -> None:
    other = run(
        "review",
        "file",
        "2024-1",
        "P1",
        review_file(register_loaded, [scored["甲1"]]),
        "--as-of",
        "2024-05-30",
    )
    assert other.exit_code == 1 and "is not a candidate of P1" in other.stderr
    alone = run(
        "review",
        "file",
        "2024-1",
        new_id(),
        review_file(register_loaded, [scored["甲1"]]),
        "--as-of",
        "2024-05-30",
    )
    assert alone.exit_code == 1 and "filed by a school" in alone.stderr
    # a borrowing school files for its own candidate, who sat at P3
    own = run(
        "review",
        "file",
        "2024-1",
        "N1",
        review_file(register_loaded, [scored["丙"]]),
        "--as-of",
        "2024-05-30",
    )
    assert own.exit_code == 0, own.output


def test_resolving_changes_the_result_and_tells_the_school(
    register_loaded: Path, scored: dict[str, str], mail_sink: MailSink
) -> None:
    path = review_file(register_loaded, [scored["甲0"]])
    assert run("review", "file", "2024-1", "P3", path, "--as-of", "2024-05-30").exit_code == 0
    at = datetime(2024, 6, 1, 10, tzinfo=SHANGHAI)
    with session_scope() as session:
        publish(session, "2024-1", datetime(2024, 5, 29, 9, tzinfo=SHANGHAI))
        state = evaluate_stage(session, get_sitting(session, "2024-1"), StageCode.publicity, at)
    assert state.state is StageState.stalled
    assert "P3: 1 review item(s) not resolved" in [str(m) for m in state.condition.missing]
    result = run("review", "resolve", "1", "--score", "61", "--as-of", "2024-06-01T10:00")
    assert result.exit_code == 0, result.output
    assert f"{scored['甲0']}: 59 → 61" in result.stdout
    with session_scope() as session:
        score = session.exec(select(Score).where(Score.ticket_number == scored["甲0"])).one()
        assert (score.score, score.passed) == (61, True)
    (message,) = received(mail_sink.mail_dir)
    assert message["To"] == "a@p3.edu.cn" and "复核后 61" in text_of(message)
    assert run("review", "resolve", "1", "--unchanged").exit_code == 1  # already resolved

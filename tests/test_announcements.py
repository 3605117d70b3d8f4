"""Announcements go once per recipient per sitting and stage, whatever day a re-run happens;
reminders and escalations go at most once a day."""

from collections import Counter
from datetime import date, datetime

import pytest
from sqlmodel import Session, SQLModel, create_engine

from examflow.db import session_scope
from flows.sitting_checkpoint import sitting_checkpoint
from models.checkpoints import CheckpointResult
from models.domain import SHANGHAI, Checkpoint, StageCode
from models.outbox import MessageDraft, queue_messages
from models.scores import publish
from notifications.sink import MailSink
from tests.mailbox import received

PUBLISHED = datetime(2024, 5, 29, 9, tzinfo=SHANGHAI)
OPEN_DAY = datetime(2024, 5, 29, 9, 5, tzinfo=SHANGHAI)
NEXT_DAY = datetime(2024, 5, 30, 10, tzinfo=SHANGHAI)


def publicity_open(as_of: datetime) -> CheckpointResult:
    result = sitting_checkpoint("2024-1", StageCode.publicity, Checkpoint.open, as_of)
    assert isinstance(result, CheckpointResult), result
    return result


@pytest.mark.prefect
def test_rerunning_publicity_open_another_day_does_not_mail_the_results_again(
    scored: dict[str, str], prefect_server: None, mail_sink: MailSink
) -> None:
    with session_scope() as session:
        publish(session, "2024-1", PUBLISHED)
    first = publicity_open(OPEN_DAY)
    # P3 (its own and N1's borrowed candidate under N1), P1 and N1 hear their results
    assert first.sent == 3
    assert Counter(m["To"] for m in received(mail_sink.mail_dir)) == {
        "a@p1.edu.cn": 1,
        "a@p3.edu.cn": 1,
        "a@n1.edu.cn": 1,
    }

    again = publicity_open(NEXT_DAY)

    assert (again.sent, again.queued) == (0, 0)
    assert len(received(mail_sink.mail_dir)) == 3


def draft(day: date, *, once: bool, checkpoint: str = "open") -> MessageDraft:
    return MessageDraft(
        sitting_code="2024-1",
        stage="publicity",
        checkpoint=checkpoint,
        day=day,
        once=once,
        recipient_ref="P1",
        to_addr="a@p1.edu.cn",
        subject="成绩公示",
        text_body="text",
        html_body="<p>html</p>",
    )


@pytest.fixture
def session() -> Session:
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    return Session(engine)


def queue(session: Session, d: MessageDraft) -> list[int]:
    when = datetime.combine(d.day, datetime.min.time(), SHANGHAI)
    return queue_messages(session, [d], queued_at=when, mail_domain="exam.example.cn")


def test_an_announcement_queued_again_another_day_is_the_same_row(session: Session) -> None:
    (first,) = queue(session, draft(date(2024, 5, 29), once=True))
    assert queue(session, draft(date(2024, 5, 30), once=True)) == [first]  # still pending: once
    assert draft(date(2024, 5, 30), once=True).key == "2024-1|publicity|open|once|P1"


def test_a_reminder_queued_another_day_is_a_new_message(session: Session) -> None:
    (first,) = queue(session, draft(date(2024, 5, 29), once=False, checkpoint="remind"))
    (second,) = queue(session, draft(date(2024, 5, 30), once=False, checkpoint="remind"))
    assert second != first
    assert queue(session, draft(date(2024, 5, 30), once=False, checkpoint="remind")) == [second]

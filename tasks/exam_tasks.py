"""Tasks that do the organiser's own part of a stage before it is evaluated."""

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from examflow.db import session_scope
from examflow.settings import get_settings
from models.arrangement import ArrangementReport, arrange
from models.certificates import issue
from models.scores import publish
from models.sittings import get_sitting


@task(name="arrange-rooms", cache_policy=NO_CACHE)
def arrange_rooms(sitting: str, as_of: datetime) -> ArrangementReport:
    """Arrange every registered candidate into a room, seat and slot (idempotent)."""
    with session_scope() as session:
        report = arrange(session, get_sitting(session, sitting), as_of)
    get_run_logger().info(
        "%s seated (%s new, %s moved); %s site/level shortfalls",
        report.seated,
        report.new,
        report.moved,
        len(report.shortfalls),
    )
    return report


@task(name="publish-scores", cache_policy=NO_CACHE)
def publish_scores(sitting: str, as_of: datetime) -> bool:
    """Record that the sitting's scores are published (once)."""
    with session_scope() as session:
        return publish(session, sitting, as_of)


@task(name="issue-certificates", cache_policy=NO_CACHE)
def issue_certificates(sitting: str, as_of: datetime) -> int:
    """Issue the e-certificates both parties have signed; returns how many are new."""
    with session_scope() as session:
        report = issue(session, get_sitting(session, sitting), as_of, get_settings().public_url)
    get_run_logger().info(
        "%s issued, %s unchanged, %s school(s) waiting for signatures",
        report.issued,
        report.unchanged,
        len(report.waiting),
    )
    return report.issued

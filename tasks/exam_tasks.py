"""Tasks that do the organiser's own part of a stage before it is evaluated."""

from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from adapters.key_files import load_private_key
from examflow.db import session_scope
from examflow.settings import get_settings
from models.arrangement import ArrangementReport, arrange
from models.certificates import issue, publish_status_list, status_list_outdated
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
    settings, logger = get_settings(), get_run_logger()
    with session_scope() as session:
        row = get_sitting(session, sitting)
        report = issue(session, row, as_of, settings.public_url)
        outdated = status_list_outdated(session, sitting)
        if outdated and settings.organiser_key_file is not None:
            key = load_private_key(settings.organiser_key_file)
            publish_status_list(session, row, key, as_of, settings.public_url)
            outdated = False
            logger.info("revocation list of %s re-signed with the organiser's key", sitting)
    logger.info(
        "%s issued, %s unchanged, %s school(s) waiting for signatures; earlier certificates "
        "revoked: %s superseded by a corrected one, %s no longer passed",
        report.issued,
        report.unchanged,
        len(report.waiting),
        report.superseded,
        report.withdrawn,
    )
    if outdated:
        logger.warning(
            "the published revocation list of %s is out of date: the verification page shows "
            "the revocations now; the list follows when the organiser re-signs it "
            "(examflow certificates status-list %s --key ORGANISER_KEY, or set "
            "EXAMFLOW_ORGANISER_KEY_FILE where checkpoints run)",
            sitting,
            sitting,
        )
    return report.issued

"""Sittings as stored: the validated calendar entry, self-contained (fees resolved)."""

from datetime import datetime
from functools import lru_cache

from sqlalchemy import bindparam
from sqlmodel import Field, Session, SQLModel, select

from models.domain import in_utc
from models.sitting_calendar import CalendarSpec, SittingSpec


class SittingBase(SQLModel):
    code: str = Field(primary_key=True, max_length=32)
    name: str
    year: int = Field(index=True)
    certificate: str
    organiser: str = ""
    spec_json: str
    source: str = ""


class Sitting(SittingBase, table=True):
    loaded_at: datetime
    updated_at: datetime

    @property
    def spec(self) -> SittingSpec:
        return _parsed_spec(self.spec_json)


@lru_cache(maxsize=64)
def _parsed_spec(spec_json: str) -> SittingSpec:
    """Parsed once per stored text: a portal page reads a sitting's windows a dozen times, and
    the spec is frozen, so one instance can be shared."""
    return SittingSpec.model_validate_json(spec_json)


# Read by every request of the school portal: built once, as a statement built per call costs
# more (its cache key) than running it.
_SITTING = select(Sitting).where(Sitting.code == bindparam("code"))


class UnknownSittingError(LookupError):
    def __init__(self, code: str) -> None:
        super().__init__(
            f"unknown sitting {code!r}: load its calendar first (examflow calendar load)"
        )


def self_contained(calendar: CalendarSpec, sitting: SittingSpec) -> SittingSpec:
    """The sitting with the calendar's default fees resolved into it."""
    fees = {level: calendar.fee(sitting, level) for level in sitting.levels}
    return sitting.model_copy(update={"fees": fees})


def store_calendar(
    session: Session, calendar: CalendarSpec, source: str, as_of: datetime
) -> dict[str, str]:
    """Insert or update every sitting of ``calendar``; returns code -> created/updated/unchanged."""
    outcome: dict[str, str] = {}
    now = in_utc(as_of)
    for spec in calendar.sittings:
        spec_json = self_contained(calendar, spec).model_dump_json()
        row = session.get(Sitting, spec.code)
        if row is None:
            session.add(
                Sitting(
                    code=spec.code,
                    name=spec.name,
                    year=spec.year,
                    certificate=calendar.certificate,
                    organiser=calendar.organiser,
                    spec_json=spec_json,
                    source=source,
                    loaded_at=now,
                    updated_at=now,
                )
            )
            outcome[spec.code] = "created"
        elif (row.spec_json, row.name, row.certificate, row.organiser) == (
            spec_json,
            spec.name,
            calendar.certificate,
            calendar.organiser,
        ):
            outcome[spec.code] = "unchanged"
        else:
            row.spec_json, row.name, row.year = spec_json, spec.name, spec.year
            row.certificate, row.source, row.updated_at = calendar.certificate, source, now
            row.organiser = calendar.organiser
            session.add(row)
            outcome[spec.code] = "updated"
    session.flush()
    return outcome


def get_sitting(session: Session, code: str) -> Sitting:
    row = session.exec(_SITTING, params={"code": code}).first()
    if row is None:
        raise UnknownSittingError(code)
    return row


def list_sittings(session: Session) -> list[Sitting]:
    return list(session.exec(select(Sitting).order_by(Sitting.code)))

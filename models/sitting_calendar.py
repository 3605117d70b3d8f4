"""Sitting calendars as data: the pydantic model of `calendars/*.toml` and its checks.

Dates in a calendar are local to Asia/Shanghai. A window's ``closes`` is a date (the deadline
is the end of that day) or a local date-time (the deadline is that moment).
"""

import tomllib
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from models.domain import SHANGHAI, Level, StageCode

DEFAULT_FEES: dict[Level, Decimal] = {
    Level.junior: Decimal(380),
    Level.intermediate: Decimal(360),
    Level.senior: Decimal(360),
}


def _date_or_datetime(value: Any) -> Any:
    """Keep a date-only deadline a date (end of day), even after a JSON round trip."""
    if isinstance(value, str):
        text = value.strip()
        return datetime.fromisoformat(text) if len(text) > 10 else date.fromisoformat(text)
    return value


def _local_time(value: time) -> time:
    """Slot times are Asia/Shanghai clock times; one with an offset (pydantic makes 0 into
    00:00 UTC) would not even compare with the others."""
    if value.tzinfo is not None:
        raise ValueError("must be a local time of day such as 08:30:00, without a UTC offset")
    return value


Deadline = Annotated[datetime | date, BeforeValidator(_date_or_datetime)]
LocalTime = Annotated[time, AfterValidator(_local_time)]
# Yuan per candidate. Bounded: registration stores it in fen in a 64-bit integer column.
Fee = Annotated[Decimal, Field(ge=0, le=100_000)]
SittingCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=32)]


class CalendarError(ValueError):
    """A calendar that does not validate; ``problems`` names sitting, field and reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelSlot(_Strict):
    """One level's time slot on exam day (local time)."""

    level: Level
    starts: LocalTime
    ends: LocalTime

    @model_validator(mode="after")
    def _starts_before_ends(self) -> Self:
        if self.starts >= self.ends:
            raise ValueError(
                f"slot {self.level}: starts {self.starts} is not before ends {self.ends}"
            )
        return self

    def overlaps(self, other: "LevelSlot") -> bool:
        return self.starts < other.ends and other.starts < self.ends


class Window(_Strict):
    """A stage window; dates inclusive. ``opens`` may be absent (registration has none)."""

    opens: date | None = None
    closes: Deadline

    @model_validator(mode="after")
    def _opens_not_after_closes(self) -> Self:
        if self.opens is not None and self.opens > self.closes_at.date():
            raise ValueError(f"opens {self.opens} is after closes {self.closes}")
        return self

    @property
    def opens_at(self) -> datetime | None:
        """The first instant of the window (start of ``opens`` in Asia/Shanghai)."""
        if self.opens is None:
            return None
        return datetime.combine(self.opens, time(0), SHANGHAI)

    @property
    def closes_at(self) -> datetime:
        """The deadline, inclusive: the end of the closing day unless a time is given."""
        if isinstance(self.closes, datetime):
            return self.closes.replace(tzinfo=SHANGHAI)
        return datetime.combine(self.closes, time.max, SHANGHAI)

    @property
    def close_day(self) -> date:
        return self.closes_at.date()

    def contains(self, as_of: datetime) -> bool:
        opens_at = self.opens_at
        return (opens_at is None or opens_at <= as_of) and as_of <= self.closes_at

    def has_closed(self, as_of: datetime) -> bool:
        return as_of > self.closes_at

    def has_opened(self, as_of: datetime) -> bool:
        opens_at = self.opens_at
        return opens_at is None or as_of >= opens_at


class Windows(_Strict):
    """One window per stage; the exam window defaults to the exam day."""

    registration: Window
    training: Window
    platform_install: Window
    materials: Window
    exam: Window
    publicity: Window
    certificates: Window

    def items(self) -> list[tuple[StageCode, Window]]:
        return [(stage, getattr(self, stage.value)) for stage in StageCode]


class SittingSpec(_Strict):
    """One sitting (考次) of the calendar."""

    code: SittingCode
    name: str = Field(min_length=1)
    exam_day: date
    slots: list[LevelSlot] = Field(min_length=1)
    windows: Windows
    pass_mark: Annotated[int, Field(ge=0, le=100)] = 60
    pass_marks: dict[Level, Annotated[int, Field(ge=0, le=100)]] = Field(default_factory=dict)
    fees: dict[Level, Fee] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _exam_window_defaults_to_exam_day(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("windows"), dict):
            windows = dict(data["windows"])
            if "exam" not in windows and "exam_day" in data:
                windows["exam"] = {"opens": data["exam_day"], "closes": data["exam_day"]}
            data = {**data, "windows": windows}
        return data

    @property
    def year(self) -> int:
        """The calendar year the sitting counts towards (pilot scale, fees)."""
        return self.exam_day.year

    @property
    def levels(self) -> list[Level]:
        return [slot.level for slot in self.slots]

    def slot(self, level: Level) -> LevelSlot:
        for slot in self.slots:
            if slot.level == level:
                return slot
        raise KeyError(level)

    def pass_mark_for(self, level: Level) -> int:
        """The level's own pass mark if the calendar gives one, else the sitting's (60)."""
        return self.pass_marks.get(level, self.pass_mark)

    def window(self, stage: StageCode) -> Window:
        window: Window = getattr(self.windows, stage.value)
        return window

    @property
    def registration_closes_at(self) -> datetime:
        return self.windows.registration.closes_at

    def slot_starts_at(self, level: Level) -> datetime:
        return datetime.combine(self.exam_day, self.slot(level).starts, SHANGHAI)

    def problems(self) -> list[str]:
        """Cross-field rules, each as 'field: reason' (the caller prefixes the sitting)."""
        found: list[str] = []
        levels = self.levels
        for level in sorted({lv for lv in levels if levels.count(lv) > 1}):
            found.append(f"slots: level {level} appears more than once")
        w = self.windows
        reg = w.registration
        if self.exam_day <= reg.close_day:
            found.append(
                f"exam_day: {self.exam_day} is not after the registration close {reg.close_day}"
            )
        exam = w.exam
        if exam.opens != self.exam_day or exam.close_day != self.exam_day:
            found.append(f"windows.exam: must be the exam day {self.exam_day}")
        pub = w.publicity
        if pub.opens is None or pub.opens <= self.exam_day:
            found.append(f"windows.publicity.opens: {pub.opens} is not after the exam day")
        cert = w.certificates
        if cert.opens is None or cert.opens <= pub.close_day:
            found.append(
                f"windows.certificates.opens: {cert.opens} is not after publicity closes "
                f"{pub.close_day}"
            )
        for stage, window in w.items():
            if stage is not StageCode.registration and window.opens is None:
                found.append(f"windows.{stage}.opens: required")
        return found


class CalendarHeader(_Strict):
    """What a calendar file says besides its sittings."""

    certificate: str = Field(min_length=1)
    organiser: str = ""
    notice: str = ""
    fees: dict[Level, Fee] = Field(default_factory=lambda: dict(DEFAULT_FEES))


class CalendarSpec(CalendarHeader):
    """A calendar file: the certificate, default advance fees and its sittings."""

    sittings: list[SittingSpec] = Field(min_length=1)

    def fee(self, sitting: SittingSpec, level: Level) -> Decimal:
        return sitting.fees.get(level, self.fees.get(level, DEFAULT_FEES[level]))

    def sitting(self, code: str) -> SittingSpec:
        for s in self.sittings:
            if s.code == code:
                return s
        raise KeyError(code)


def _loc(loc: tuple[int | str, ...]) -> str:
    # A key from the file may hold a line break or other invisible characters: quote those.
    parts = (p if isinstance(p, str) and p.isprintable() else repr(p) for p in loc)
    return ".".join(str(part) for part in parts) or "(top level)"


def _format_errors(error: ValidationError, prefix: str) -> list[str]:
    problems = []
    for e in error.errors(include_url=False):
        message = str(e["msg"]).removeprefix("Value error, ")
        problems.append(f"{prefix}{_loc(e['loc'])}: {message}")
    return problems


def parse_calendar(text: str) -> CalendarSpec:
    """Parse and validate a calendar's TOML text; raise CalendarError listing every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError([f"not valid TOML: {exc}"]) from exc
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise CalendarError(["not valid TOML: arrays or tables nested too deeply"]) from None
    problems: list[str] = []
    sittings_raw = raw.get("sittings")
    if not isinstance(sittings_raw, list) or not sittings_raw:
        problems.append("sittings: at least one [[sittings]] table is required")
        sittings_raw = []
    sittings: list[SittingSpec] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(sittings_raw):
        if not isinstance(item, dict):
            problems.append(f"sittings: sitting #{index + 1} is not a table ([[sittings]])")
            continue
        code = item.get("code")
        # Name the sitting by its code when it is one line of text, else by its position.
        named = isinstance(code, str) and code.isprintable() and code
        prefix = f"sitting {code if named else f'#{index + 1}'}: "
        if isinstance(code, str) and code in seen:
            problems.append(f"{prefix}code: duplicate sitting code (also sitting #{seen[code]})")
        elif isinstance(code, str):
            seen[code] = index + 1
        try:
            sitting = SittingSpec.model_validate(item)
        except ValidationError as exc:
            problems.extend(_format_errors(exc, prefix))
            continue
        problems.extend(prefix + p for p in sitting.problems())
        sittings.append(sitting)
    top = {k: v for k, v in raw.items() if k != "sittings"}
    header: CalendarHeader | None = None
    try:
        header = CalendarHeader.model_validate(top)
    except ValidationError as exc:
        problems.extend(_format_errors(exc, "calendar: "))
    if problems or header is None:
        raise CalendarError(problems)
    return CalendarSpec(**dict(header), sittings=sittings)

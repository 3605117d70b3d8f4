"""The iCalendar (.ics) of a sitting's dates that concern one school."""

import re
from datetime import datetime, timedelta
from functools import cache

from icalendar import Calendar, Event, Timezone

from models.domain import STAGE_LABELS_ZH, StageCode
from models.sitting_calendar import SittingSpec

SITE_ONLY = {StageCode.training, StageCode.platform_install, StageCode.materials}
# icalendar folds a content line longer than this many octets (RFC 5545 §3.1)
_FOLD_AT = 75
_PLACEHOLDER = "{who}"
_PLAIN_WHO = re.compile(r"[A-Za-z0-9_.-]+")


@cache
def _vtimezone(tzid: str) -> Timezone:
    """The VTIMEZONE icalendar generates for ``tzid`` (the same on every call, and costly:
    it walks the zone's transitions), made once per process; never modified once made."""
    return Timezone.from_tzid(tzid)


def _calendar(
    spec: SittingSpec, certificate: str, who: str, is_site: bool, stamp: datetime
) -> Calendar:
    cal = Calendar()
    cal.add("prodid", "-//examflow//sitting calendar//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{spec.name}")
    for stage in StageCode:
        if stage is StageCode.exam or (stage in SITE_ONLY and not is_site):
            continue
        window = spec.window(stage)
        # registration has no useful start: the deadline day is what a school must not miss
        deadline_only = stage is StageCode.registration
        first = window.close_day if deadline_only else (window.opens or window.close_day)
        label = "报名截止" if deadline_only else STAGE_LABELS_ZH[stage]
        event = Event()
        event.add("uid", f"{spec.code}-{stage.value}-{who}@examflow")
        event.add("dtstamp", stamp)
        event.add("summary", f"{spec.name}：{label}")
        event.add("dtstart", first)
        event.add("dtend", window.close_day + timedelta(days=1))
        event.add("description", f"{certificate} · {STAGE_LABELS_ZH[stage]}")
        cal.add_component(event)
    for slot in spec.slots:
        event = Event()
        event.add("uid", f"{spec.code}-exam-{slot.level.name}-{who}@examflow")
        event.add("dtstamp", stamp)
        event.add("summary", f"{spec.name}：正式考试（{slot.level}）")
        starts = spec.slot_starts_at(slot.level)
        event.add("dtstart", starts)
        event.add("dtend", starts.replace(hour=slot.ends.hour, minute=slot.ends.minute))
        cal.add_component(event)
    # what add_missing_timezones() does (each missing zone first, in its order), from the cache
    at = len(cal.timezones)
    for tzid in sorted(cal.get_missing_tzids()):
        cal.subcomponents.insert(at, _vtimezone(tzid))
        at += 1
    return cal


def sitting_ics(
    spec: SittingSpec, certificate: str, school_code: str | None, is_site: bool, stamp: datetime
) -> bytes:
    """All-day events for the stage windows (sites also get their own stages), and one timed
    event per level slot on exam day. UIDs are stable, so a re-sent file updates calendars."""
    return bytes(_calendar(spec, certificate, school_code or "all", is_site, stamp).to_ical())


class SittingCalendars:
    """``sitting_ics`` for many schools of one sitting at one stamp, cheaply: the calendar is
    built once per kind of school (site or not) with a placeholder where the school's code
    goes (only in the UIDs), and each school's file is that with its code in place: the same
    bytes as ``sitting_ics``. A code that would change more than the UID text (escaping, a
    folded line) gets its calendar built in full."""

    def __init__(self, spec: SittingSpec, certificate: str, stamp: datetime) -> None:
        self._spec, self._certificate, self._stamp = spec, certificate, stamp
        self._templates: dict[bool, tuple[bytes, int] | None] = {}

    def _template(self, is_site: bool) -> tuple[bytes, int] | None:
        """(the calendar with the placeholder, the longest UID line's octets without it), or
        None when the placeholder is not found in UID lines alone."""
        if is_site not in self._templates:
            cal = _calendar(self._spec, self._certificate, _PLACEHOLDER, is_site, self._stamp)
            data = bytes(cal.to_ical())
            uid_lines = [
                f"UID:{e['uid']}".encode()
                for e in cal.walk("VEVENT")
                if _PLACEHOLDER in str(e["uid"])
            ]
            n = len(cal.walk("VEVENT"))
            found = data.count(_PLACEHOLDER.encode())
            whole = sum(data.count(line + b"\r\n") for line in set(uid_lines))
            ok = len(uid_lines) == n and found == n and whole == n
            longest = max((len(line) for line in uid_lines), default=0)
            self._templates[is_site] = (data, longest - len(_PLACEHOLDER)) if ok else None
        return self._templates[is_site]

    def for_school(self, school_code: str | None, is_site: bool) -> bytes:
        who = school_code or "all"
        template = self._template(is_site)
        if template is not None and _PLAIN_WHO.fullmatch(who):
            data, longest = template
            if longest + len(who) <= _FOLD_AT:
                return data.replace(_PLACEHOLDER.encode(), who.encode())
        return sitting_ics(self._spec, self._certificate, school_code, is_site, self._stamp)

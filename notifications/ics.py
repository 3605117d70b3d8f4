"""The iCalendar (.ics) of a sitting's dates that concern one school."""

from datetime import datetime, timedelta

from icalendar import Calendar, Event

from models.domain import STAGE_LABELS_ZH, StageCode
from models.sitting_calendar import SittingSpec

SITE_ONLY = {StageCode.training, StageCode.platform_install, StageCode.materials}


def sitting_ics(
    spec: SittingSpec, certificate: str, school_code: str | None, is_site: bool, stamp: datetime
) -> bytes:
    """All-day events for the stage windows (sites also get their own stages), and one timed
    event per level slot on exam day. UIDs are stable, so a re-sent file updates calendars."""
    cal = Calendar()
    cal.add("prodid", "-//examflow//sitting calendar//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{spec.name}")
    who = school_code or "all"
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
    cal.add_missing_timezones()
    return bytes(cal.to_ical())

"""The notice's vocabulary as enums, and the time zone the calendar is written in."""

from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def in_shanghai(moment: datetime) -> datetime:
    """The moment on Shanghai's clock; a naive value already means Shanghai time.

    (`naive.astimezone(...)` would read a naive value as the machine's local zone.)
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(SHANGHAI)


def in_utc(moment: datetime) -> datetime:
    """The moment in UTC, as stored; a naive value means Shanghai time (`in_shanghai`)."""
    return in_shanghai(moment).astimezone(UTC)


class Level(StrEnum):
    """级别: each level has its own time slot on exam day."""

    junior = "初级"
    intermediate = "中级"
    senior = "高级"


class StageCode(StrEnum):
    """The stages of a sitting, in the notice's order (their windows overlap)."""

    registration = "registration"
    training = "training"
    platform_install = "platform_install"
    materials = "materials"
    exam = "exam"
    publicity = "publicity"
    certificates = "certificates"


STAGE_LABELS_ZH: dict[StageCode, str] = {
    StageCode.registration: "考试报名",
    StageCode.training: "考务及技术人员培训、编排考场",
    StageCode.platform_install: "考点设备调试、安装考试平台",
    StageCode.materials: "下载准考证、部署考场、打印物料",
    StageCode.exam: "正式考试",
    StageCode.publicity: "成绩公示",
    StageCode.certificates: "颁发证书",
}


class StageState(StrEnum):
    upcoming = "upcoming"
    open = "open"
    complete = "complete"
    stalled = "stalled"


class Checkpoint(StrEnum):
    open = "open"
    remind = "remind"
    close = "close"


SOCIAL = "social"
"""The guest code under which a site agrees to host social candidates (社会考生)."""

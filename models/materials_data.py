"""What a site's exam materials show: plain values, built from the arrangement, for rendering.

ID numbers are already masked here: a PDF never receives a full ID number.
"""

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class TicketLine(_Frozen):
    """One candidate in one room and slot (准考证 / 桌签 / 签到表 line)."""

    ticket_number: str
    name: str
    masked_id: str
    level: str
    school_name: str
    room: str
    seat: int
    starts: datetime
    ends: datetime


class RoomSlot(_Frozen):
    """One room in one level's slot, with its candidates by seat (门贴 / 签到表 page)."""

    room: str
    level: str
    starts: datetime
    ends: datetime
    seats: int
    candidates: list[TicketLine]

    @property
    def ticket_range(self) -> str:
        numbers = [c.ticket_number for c in self.candidates]
        return f"{min(numbers)} – {max(numbers)}" if numbers else ""


class SiteMaterials(_Frozen):
    """Everything one site prints for one sitting."""

    sitting_code: str
    sitting_name: str
    certificate: str
    exam_day: date
    site_code: str
    site_name: str
    rules: list[str]
    rooms: list[RoomSlot]

    @property
    def candidates(self) -> list[TicketLine]:
        return [c for room in self.rooms for c in room.candidates]


EXAM_RULES = [
    "考生须持准考证和本人有效身份证件，按准考证所列时间、考场和座位参加考试。",
    "全国统一时间进行考试：初级 14:00–17:45，中级 8:30–11:45，高级 13:30–17:45（以准考证为准）。",
    "考生应提前到达考点，按考点《考务工作执行手册》的要求入场、签到。",
    "考试在考点安装的考试平台上进行；考前已由考点完成模考及平台测试。",
    "成绩在教育部 1+X 证书平台公示；公示期内接受以院校为单位的成绩复核申请。",
]

"""The shape of a stage's completion condition: met or not, and who still owes what.

A missing item is data: the party that owes it (a school, a site or the organiser), the
stage, an item code and a count, plus the little detail a message needs. Its text, for
people, is rendered from it by ``describe`` alone; nothing decides anything by its text.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict
from sqlmodel import Session

from models.domain import StageCode
from models.facts import FACT_LABELS_ZH, SiteFact
from models.sittings import Sitting

ORGANISER = "organiser"


class PartyKind(StrEnum):
    """Who owes an item: a school (registration, results, certificates), an exam site (its
    facts, its attendance) or the organiser itself (rooms, scores)."""

    school = "school"
    site = "site"
    organiser = "organiser"


class Owed(StrEnum):
    """Item codes besides the site facts (whose codes are ``SiteFact`` values)."""

    not_a_site = "not_a_site"  # candidates registered at a school that is not a site
    over_pilot_scale = "over_pilot_scale"  # count: the school's candidates that year
    rooms_not_arranged = "rooms_not_arranged"  # count: candidates without a seat
    no_seat = "no_seat"  # count: candidates of detail site/level without a seat
    no_attendance = "no_attendance"  # count: seated candidates with no attendance
    unscored = "unscored"  # count: present candidates without a score
    scores_unpublished = "scores_unpublished"
    results_undelivered = "results_undelivered"
    unresolved_review = "unresolved_review"  # count: review items not resolved
    unsigned_batch = "unsigned_batch"  # count: passing candidates; detail unsigned parties
    certificates_not_issued = "certificates_not_issued"  # signed, not issued yet
    nobody_registered = "nobody_registered"  # registration reminder: a pilot school
    no_host_site = "no_host_site"  # registration reminder: a pilot school without a site
    held_site = "held_site"  # go/no-go hold: count candidates of detail site to re-seat/move


Detail = dict[str, str | int | list[str]]


class Missing(BaseModel):
    """One thing a school, a site or the organiser still owes for a stage."""

    model_config = ConfigDict(frozen=True)

    party: str
    party_kind: PartyKind
    stage: StageCode
    item: str
    count: int = 1
    detail: Detail = {}

    @property
    def what(self) -> str:
        """The item for people (the wording of reminders, artifacts and `status`)."""
        return describe(self)

    def __str__(self) -> str:
        return f"{self.party}: {describe(self)}"

    def as_json(self) -> dict[str, object]:
        """The stable shape of ``status --json``'s ``items``."""
        return {
            "party": self.party,
            "party_kind": self.party_kind.value,
            "stage": self.stage.value,
            "item": self.item,
            "count": self.count,
            "detail": dict(self.detail),
        }


SIGNER_LABELS_ZH = {ORGANISER: "培训评价组织", "school": "学校"}
"""The parties of a batch signature as ``unsigned_batch``'s detail names them."""

_TEXTS: dict[str, Callable[[Missing], str]] = {
    Owed.not_a_site: lambda m: f"{m.count} candidate(s) registered at a school that is not a site",
    Owed.over_pilot_scale: lambda m: (
        f"{m.count} candidates in {m.detail['year']}, pilot scale {m.detail['pilot_scale']}"
    ),
    Owed.rooms_not_arranged: lambda m: "rooms not arranged yet",
    Owed.no_seat: lambda m: (
        f"{m.detail['site']} {m.detail['level']}: {m.count} candidate(s) without a room and seat"
    ),
    Owed.no_attendance: lambda m: f"attendance not recorded for {m.count} candidate(s)",
    Owed.unscored: lambda m: f"{m.count} present candidate(s) without a score",
    Owed.scores_unpublished: lambda m: "scores not published yet",
    Owed.results_undelivered: lambda m: "results not delivered to the school yet",
    Owed.unresolved_review: lambda m: f"{m.count} review item(s) not resolved",
    Owed.unsigned_batch: lambda m: (
        f"{m.count} 名合格考生尚未生成电子证书（待签发："
        + "、".join(SIGNER_LABELS_ZH[str(p)] for p in _listed(m.detail.get("unsigned")))
        + "）"
    ),
    Owed.certificates_not_issued: lambda m: f"{m.count} 名合格考生尚未生成电子证书",
    Owed.nobody_registered: lambda m: "尚未为学生报名（报名截止后将无法补报名）",
    Owed.no_host_site: lambda m: "非考点院校须与邻近考点协商借考，或在截止前申报考点",
    Owed.held_site: lambda m: (
        f"{m.detail['site']} held (no-go): {m.count} candidate(s) to re-seat or move"
        " to a later sitting, or record as absent"
    ),
    **{fact.value: (lambda m: FACT_LABELS_ZH[SiteFact(m.item)]) for fact in SiteFact},
}


def _listed(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def describe(item: Missing) -> str:
    """The one rendering of a missing item for people (without its party)."""
    return _TEXTS[item.item](item)


_TEXTS_ZH: dict[str, Callable[[Missing], str]] = {
    Owed.not_a_site: lambda m: f"{m.count} 名考生报名的学校不是考点",
    Owed.over_pilot_scale: lambda m: (
        f"{m.detail['year']} 年报名 {m.count} 人，超过试点规模 {m.detail['pilot_scale']} 人"
    ),
    Owed.rooms_not_arranged: lambda m: "尚未编排考场",
    Owed.no_seat: lambda m: (
        f"{m.detail['site']} {m.detail['level']}：{m.count} 名考生尚未安排考场和座位"
    ),
    Owed.no_attendance: lambda m: f"{m.count} 名考生尚未登记出勤",
    Owed.unscored: lambda m: f"{m.count} 名出席考生尚无成绩",
    Owed.scores_unpublished: lambda m: "成绩尚未公示",
    Owed.results_undelivered: lambda m: "成绩尚未发送给学校",
    Owed.unresolved_review: lambda m: f"{m.count} 项成绩复核尚未处理",
    Owed.held_site: lambda m: (
        f"{m.detail['site']} 暂停开考：{m.count} 名考生须改派考场、转入以后批次或记为缺考"
    ),
}


def describe_zh(item: Missing) -> str:
    """The item in Chinese, for the portal's pages (``describe``'s wording stays that of
    reminders, artifacts and ``status``; items it already words in Chinese read the same)."""
    text = _TEXTS_ZH.get(item.item)
    return text(item) if text is not None else describe(item)


def site_fact_item(site: str, stage: StageCode, fact: SiteFact) -> Missing:
    return Missing(party=site, party_kind=PartyKind.site, stage=stage, item=fact.value)


@dataclass(frozen=True)
class Condition:
    """A stage's completion condition evaluated at ``as_of``."""

    met: bool
    missing: list[Missing] = field(default_factory=list)
    note: str = ""


class ConditionRule(Protocol):
    """A stage's completion condition, evaluated for the whole sitting, or, given ``party``,
    for that one school, site (or the organiser) alone: then ``missing`` is exactly the
    whole evaluation's items whose ``party`` is ``party``, at a cost proportional to that
    party, and ``met`` and ``note`` speak of those items only, not of the sitting."""

    def __call__(
        self, session: Session, sitting: Sitting, as_of: datetime, party: str | None = None
    ) -> Condition: ...


def in_scope(party: str | None, code: str) -> bool:
    """Whether an item owed by ``code`` belongs to an evaluation scoped to ``party``
    (``None``: the whole sitting)."""
    return party is None or party == code

"""The shape of a stage's completion condition: met or not, and who still owes what."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from models.sittings import Sitting

ORGANISER = "organiser"


@dataclass(frozen=True)
class Missing:
    """One thing a school or site still owes for a stage."""

    party: str
    what: str

    def __str__(self) -> str:
        return f"{self.party}: {self.what}"


@dataclass(frozen=True)
class Condition:
    """A stage's completion condition evaluated at ``as_of``."""

    met: bool
    missing: list[Missing] = field(default_factory=list)
    note: str = ""


ConditionRule = Callable[[Session, Sitting, datetime], Condition]

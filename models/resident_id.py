"""PRC resident identity card numbers (居民身份证号码, GB 11643-1999): normalise, validate, mask.

Numbers arrive from spreadsheets, so the normaliser undoes what Excel and input methods do to
them (full-width digits, stray spaces, the ``'`` text marker) and the validator names the
Excel mistakes it cannot undo (scientific notation, a trailing ``.0``) so that schools can fix
them at source. Validation is on the registration hot path: keep the plain-ASCII path lean.
"""

import re
import unicodedata
from datetime import date, datetime
from functools import lru_cache

# GB 11643 weights (7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2) are 2**(18-i) mod 11; see _check_digit.
_CHECK_CHARS = "10X98765432"
_DIGITS = frozenset("0123456789")

# GB/T 2260 province-level codes (first two digits); 71/81/82/83 are Taiwan, Hong Kong,
# Macao and the residence permits issued to their residents.
_PROVINCES = frozenset(
    str(code)
    for span in ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65))
    for code in range(span[0], span[1] + 1)
) | {"71", "81", "82", "83"}

# Invisible characters that survive NFKC and str.split(): they come with copy-and-paste.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_QUOTE_PAIRS = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}
_SCIENTIFIC_RE = re.compile(r"[+-]?\d+(?:\.\d*)?E[+-]?\d+", re.IGNORECASE)
_FLOAT_ZERO_RE = re.compile(r"\d+\.0+")


class ResidentIdError(ValueError):
    """A resident ID that is not valid, with the reason in plain English."""


def normalise_resident_id(raw: str) -> str:
    """Undo full-width characters, whitespace, Excel's text marker and quotes; upper-case x.

    Never raises: whatever comes out is for ``validate_resident_id`` to judge.
    """
    text = unicodedata.normalize("NFKC", raw).translate(_INVISIBLE)
    text = "".join(text.split())  # split() knows every Unicode space, U+3000 included
    if len(text) >= 2 and _QUOTE_PAIRS.get(text[0]) == text[-1]:
        text = text[1:-1]
    if text.startswith("'"):  # Excel's "store as text" marker, when the cell is exported
        text = text[1:]
    return text.replace("x", "X")


def check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits of an ID."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ResidentIdError(f"need exactly 17 digits to compute a check digit, got {first17!r}")
    return _check_digit(first17)


def _check_digit(first17: str) -> str:
    # The weights are 2**(18-i) mod 11, so the weighted sum is 2 * P(2) for the polynomial P
    # whose coefficients are the digits; 13 ≡ 2 (mod 11), and int(first17, 13) evaluates P(13)
    # in C: the same remainder, four times faster than summing products.
    return _CHECK_CHARS[(2 * int(first17, 13)) % 11]


@lru_cache(maxsize=65536)
def _birth_date(yyyymmdd: str) -> date | None:
    """The calendar date, or None if there is no such day; cached as birthdays repeat a lot."""
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return None


def validate_resident_id(raw: str, as_of: date) -> str:
    """The normalised 18-character ID, or ResidentIdError saying what is wrong with ``raw``.

    ``as_of`` is today's date: nobody is born after it.
    """
    # Fast path: 18 ASCII letters/digits need no normalising beyond an upper-case X.
    if len(raw) == 18 and raw.isascii() and raw.isalnum():
        id_number = raw if raw[17] != "x" else raw[:17] + "X"
    else:
        id_number = normalise_resident_id(raw)
        _check_shape(id_number)
    first17, last = id_number[:17], id_number[17]
    if not (first17.isascii() and first17.isdigit()):
        position, char = next((i, c) for i, c in enumerate(first17, 1) if c not in _DIGITS)
        raise ResidentIdError(f"character {position} is {char!r}, expected a digit")
    if last not in _DIGITS and last != "X":
        raise ResidentIdError(f"last character is {last!r}, expected a digit or X")
    if id_number[:2] not in _PROVINCES:
        raise ResidentIdError(
            f"region code {id_number[:6]} does not start with a province code ({id_number[:2]})"
        )
    _check_birth_date(id_number[6:14], as_of)
    expected = _check_digit(first17)
    if last != expected:
        raise ResidentIdError(f"check digit is {last}, expected {expected}")
    return id_number


def _check_shape(id_number: str) -> None:
    """Reject empty values, Excel's numeric mangling and wrong lengths, before the details."""
    if not id_number:
        raise ResidentIdError("resident ID is empty")
    if _SCIENTIFIC_RE.fullmatch(id_number):
        raise ResidentIdError(
            f"looks like Excel scientific notation ({id_number}); "
            "format the column as text and re-enter the number"
        )
    if _FLOAT_ZERO_RE.fullmatch(id_number):
        raise ResidentIdError(
            f"ends in a decimal part ({id_number}), so Excel stored it as a number and may have "
            "changed the last digits; format the column as text and re-enter the number"
        )
    if len(id_number) != 18:
        old = " (15-digit IDs were replaced by 18-digit ones)" if len(id_number) == 15 else ""
        raise ResidentIdError(f"has {len(id_number)} characters, expected 18{old}")


def _check_birth_date(yyyymmdd: str, as_of: date) -> None:
    born = _birth_date(yyyymmdd)
    if born is None:
        raise ResidentIdError(f"birth date {yyyymmdd} is not a real date")
    if born.year < 1900:
        raise ResidentIdError(f"birth date {yyyymmdd} is before 1900")
    if isinstance(as_of, datetime):  # a datetime would not compare with a date
        as_of = as_of.date()
    if born > as_of:
        raise ResidentIdError(f"birth date {yyyymmdd} is after {as_of.isoformat()}")


_STORED_FORM = re.compile(r"[0-9]{17}[0-9X]")  # what registration stores: nothing to undo


def mask_resident_id(id_number: str) -> str:
    """'110101********1234': region and last four only, for lists and error reports."""
    # a stored ID skips normalising (a site's download masks 300 of them, every time)
    text = id_number if _STORED_FORM.fullmatch(id_number) else normalise_resident_id(id_number)
    if len(text) <= 10:  # too short to show anything without showing most of it
        return "*" * len(text)
    return text[:6] + "*" * (len(text) - 10) + text[-4:]


def mask_phone(phone: str) -> str:
    """'138****5678': the carrier prefix and last four digits only."""
    text = "".join(unicodedata.normalize("NFKC", phone).split())
    if len(text) <= 7:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 7) + text[-4:]

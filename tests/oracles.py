"""Expected values for the tests, computed independently of the production parsers they check.

Each oracle follows the written rule (the README's vocabulary, GB 11643's check digit, "an
amount in yuan with at most two decimals") with different code from models/: a test whose
expected value came from the function under test could not fail.
"""

import unicodedata
from fractions import Fraction

# The README's 是/否 columns and the English words the import guide allows, as a table.
YES_NO = {
    "是": True,
    "y": True,
    "yes": True,
    "true": True,
    "t": True,
    "1": True,
    "否": False,
    "n": False,
    "no": False,
    "false": False,
    "f": False,
    "0": False,
}
# 出勤 column of an attendance sheet.
ATTENDANCE = {
    "出席": True,
    "到考": True,
    "present": True,
    "是": True,
    "1": True,
    "y": True,
    "yes": True,
    "缺考": False,
    "缺席": False,
    "absent": False,
    "否": False,
    "0": False,
    "n": False,
    "no": False,
}


def yes_no(text: str) -> bool | None:
    return YES_NO.get(text.strip().lower())


def attended(text: str) -> bool | None:
    return ATTENDANCE.get(text.strip().lower())


def whole_number(text: str) -> int | None:
    """A count as a school types it: decimal digits of any script, thousands commas, Excel's
    trailing '.0'."""
    digits = text.strip().replace(",", "")
    if digits.endswith(".0"):
        digits = digits[:-2]
    if not digits or len(digits) > 18:
        return None
    value = 0
    for char in digits:
        digit = unicodedata.decimal(char, None)
        if digit is None:
            return None
        value = value * 10 + digit
    return value


def fen(text: str) -> int | None:
    """Yuan with at most two decimals, as fen (exact: a Fraction, not a Decimal)."""
    try:
        yuan = Fraction(text.strip().replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None
    cents = yuan * 100
    return int(cents) if cents.denominator == 1 and cents >= 0 else None


def iso7064_check(first17: str) -> str:
    """ISO 7064 MOD 11-2 from its definition (weights 2^k mod 11), as GB 11643 prints it."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


QUOTES = "'\"“”‘’"


def resident_id(raw: str) -> str:
    """What an accepted ID cell stands for: compatibility forms folded (full-width digits and
    Ｘ), spaces, invisible characters and quotes dropped, x upper-cased."""
    folded = unicodedata.normalize("NFKC", raw)
    kept = [
        c
        for c in folded
        if not c.isspace() and c not in QUOTES and unicodedata.category(c) not in ("Cf", "Cc")
    ]
    return "".join(kept).upper()


def es6_number(value: float) -> str:
    """ECMAScript's Number::toString (ECMA-262 6.1.6.1.20), step by step: the shortest digits
    s (k of them) with s × 10^(n−k) = value, then placed by the spec's cases."""
    if value == 0:
        return "0"
    if value < 0:
        return "-" + es6_number(-value)
    mantissa, _, exponent = f"{value!r}".partition("e")  # repr: the shortest round-trip digits
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    n = len(whole.lstrip("0")) + int(exponent or 0)
    if not whole.lstrip("0"):  # 0.000123: the leading zeros of the fraction move n down
        n = int(exponent or 0) - (len(fraction) - len(fraction.lstrip("0")))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    sign = "+" if e > 0 else "-"
    head = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{head}e{sign}{abs(e)}"


def canonical_json(value: object) -> str:
    """RFC 8785 (JCS): no whitespace, members sorted by their names' UTF-16 code units,
    numbers as ECMAScript prints them, strings as JSON.stringify escapes them."""
    import json

    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return es6_number(float(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    if isinstance(value, dict):
        names = sorted(value, key=lambda name: name.encode("utf-16-be"))
        members = (f"{canonical_json(name)}:{canonical_json(value[name])}" for name in names)
        return "{" + ",".join(members) + "}"
    raise TypeError(f"not JSON: {value!r}")

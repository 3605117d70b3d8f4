"""RFC 8785 JSON Canonicalization Scheme (JCS): the bytes that examflow hashes and signs.

Two parties sign the same certificate batch on different machines, and anyone holding a
credential must be able to recompute exactly what was signed, so a value has one byte form:
no whitespace, object members sorted by the UTF-16 code units of their names, strings with
the minimal JSON escapes (ECMAScript's JSON.stringify), numbers as ECMAScript prints doubles,
UTF-8. Values are what ``json.loads`` produces (dict, list, str, int, float, bool, None);
tuples count as arrays. Anything JCS cannot represent exactly is refused, not approximated.
"""

import json.encoder
import math
from collections.abc import Callable
from typing import Any

# CPython's C string encoder with ensure_ascii=False escapes exactly what JSON.stringify
# escapes: '"', '\\', \b \f \n \r \t, and the other control characters as lower-case \u00xx.
_encode_string: Callable[[str], str] = json.encoder.encode_basestring

# Integers up to 2**53 are exact doubles and print the same in ECMAScript and Python.
_MAX_SAFE_INTEGER = 2**53


class CanonicalJsonError(ValueError):
    """A value that has no RFC 8785 form (a NaN, a non-string key, a lone surrogate, …)."""


def canonical_json(value: object) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value``."""
    try:
        return _encode(value).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: JCS requires well-formed Unicode
        raise CanonicalJsonError(f"string contains a lone surrogate ({exc.reason})") from None


def es6_number(value: float) -> str:
    """``value`` as ECMAScript's Number.prototype.toString prints it (RFC 8785 §3.2.2.3).

    Python's repr and ECMAScript both print the shortest digits that round-trip, so only the
    layout differs: ECMAScript writes plain digits for exponents in [-7, 21) and otherwise
    ``1e+21`` style.
    """
    if not math.isfinite(value):
        raise CanonicalJsonError(f"{value!r} is not a JSON number")
    if value == 0:
        return "0"  # -0 included
    sign = "-" if value < 0 else ""
    digits, point = _shortest_digits(abs(value))
    count = len(digits)
    if count <= point <= 21:
        body = digits + "0" * (point - count)
    elif 0 < point <= 21:
        body = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        body = "0." + "0" * -point + digits
    else:
        exponent = point - 1
        mantissa = digits if count == 1 else digits[0] + "." + digits[1:]
        body = f"{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}"
    return sign + body


def _shortest_digits(value: float) -> tuple[str, int]:
    """(digits, point) with value == 0.digits × 10**point and no leading/trailing zeros."""
    mantissa, _, exp = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(whole) + int(exp or 0) - (len(whole + fraction) - len(digits))
    return digits.rstrip("0"), point


def _encode(value: Any) -> str:
    # Exact-type checks first (the common case, and cheaper than isinstance); subclasses such
    # as StrEnum or OrderedDict take the slower path below. bool is tested before int.
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if kind is dict:
        return _encode_object(value)
    if kind is list or kind is tuple:
        return "[" + ",".join([_encode(item) for item in value]) + "]"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        if -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
            return int.__repr__(value)  # int.__repr__: an IntEnum must not print its name
        return _large_integer(value)
    if isinstance(value, float):
        return es6_number(value)
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, dict):
        return _encode_object(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join([_encode(item) for item in value]) + "]"
    raise CanonicalJsonError(f"{type(value).__name__} is not a JSON value")


def _large_integer(value: int) -> str:
    """An integer beyond ±2**53 as the double it equals (as a parsed 2.0**60 comes back), or
    refused if no double equals it: JCS numbers are doubles, and rounding would change it."""
    try:
        as_double = float(value)
    except OverflowError:
        as_double = math.nan
    if as_double != value:
        raise CanonicalJsonError(f"integer {value} is not exactly representable in JSON")
    return es6_number(as_double)


def _encode_object(value: dict[Any, Any]) -> str:
    keys = list(value)
    for key in keys:
        if not isinstance(key, str):
            raise CanonicalJsonError(f"object key {key!r} is not a string")
    if "".join(keys).isascii():
        keys.sort()  # code point order is UTF-16 order for ASCII, and sorting is 5x cheaper
    else:
        # Characters above U+FFFF are surrogate pairs (0xD800…) in UTF-16, so they sort before
        # U+E000…U+FFFF there but after them in code point order; big-endian bytes compare
        # like code units. surrogatepass lets a lone surrogate reach canonical_json's check.
        keys.sort(key=lambda key: key.encode("utf-16-be", "surrogatepass"))
    return "{" + ",".join([_encode_string(key) + ":" + _encode(value[key]) for key in keys]) + "}"

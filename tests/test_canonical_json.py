"""Canonical JSON (RFC 8785) against an independent implementation of the RFC (tests/oracles.py):
the signed bytes of every credential depend on it byte for byte."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.canonical_json import canonical_json, es6_number
from tests import oracles

# RFC 8785 appendix B and ECMA-262's own examples: they pin the oracle to the spec.
ES6_EXAMPLES = [
    (0.0, "0"),
    (-0.0, "0"),
    (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (9007199254740992.0, "9007199254740992"),
    (-9007199254740992.0, "-9007199254740992"),
    (295147905179352830000.0, "295147905179352830000"),
    (1e21, "1e+21"),
    (1e-7, "1e-7"),
    (0.000001, "0.000001"),
    (333333333.3333333, "333333333.3333333"),
    (1.5e300, "1.5e+300"),
    (-1.25e-10, "-1.25e-10"),
    (123.0, "123"),
    (0.1, "0.1"),
]


@pytest.mark.parametrize(("value", "text"), ES6_EXAMPLES)
def test_the_oracle_prints_the_spec_examples(value: float, text: str) -> None:
    assert oracles.es6_number(value) == text


@pytest.mark.parametrize(("value", "text"), ES6_EXAMPLES)
def test_es6_number_prints_the_spec_examples(value: float, text: str) -> None:
    assert es6_number(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_es6_number_agrees_with_the_spec_for_every_double(value: float) -> None:
    assert es6_number(value) == oracles.es6_number(value)


TEXT = st.text(st.characters(exclude_categories=("Cs",)))  # lone surrogates are refused
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children) | st.dictionaries(TEXT, children),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_canonical_json_is_the_rfc_8785_form(value: object) -> None:
    assert canonical_json(value) == oracles.canonical_json(value).encode("utf-8")


def test_members_sort_by_utf_16_code_units_not_code_points() -> None:
    # U+1F600 is D83D DE00 in UTF-16: before U+FB01 (FB01), though its code point is larger
    value = {"\ufb01": 1, "\U0001f600": 2, "a": 3}
    assert canonical_json(value) == '{"a":3,"\U0001f600":2,"\ufb01":1}'.encode()
    assert oracles.canonical_json(value) == '{"a":3,"\U0001f600":2,"\ufb01":1}'

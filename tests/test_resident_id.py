"""Resident ID numbers: what schools' spreadsheets do to them, and what the validator says."""

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.resident_id import (
    ResidentIdError,
    check_digit,
    mask_phone,
    mask_resident_id,
    normalise_resident_id,
    validate_resident_id,
)
from tests.oracles import iso7064_check, resident_id

AS_OF = date(2026, 5, 1)


def make_id(region: str = "110101", birth: str = "19900307", seq: str = "123") -> str:
    first17 = region + birth + seq
    return first17 + iso7064_check(first17)


def rejection(raw: str, as_of: date = AS_OF) -> str:
    with pytest.raises(ResidentIdError) as info:
        validate_resident_id(raw, as_of)
    return str(info.value)


VALID = make_id()
WITH_X = make_id(seq="002")  # this sequence number happens to need the check character X


def test_the_oracle_agrees_with_the_example_printed_in_gb_11643() -> None:
    assert make_id("110105", "19491231", "002") == "11010519491231002X"


def test_a_valid_id_is_returned_unchanged() -> None:
    assert validate_resident_id(VALID, AS_OF) == VALID


def test_check_digit_computes_the_eighteenth_character() -> None:
    assert check_digit(VALID[:17]) == VALID[17]
    assert check_digit(WITH_X[:17]) == "X"


@pytest.mark.parametrize(
    "bad", ["1101011990030712", "11010119900307123A", "１１０１０１１９９００３０７１２"]
)
def test_check_digit_refuses_anything_but_17_ascii_digits(bad: str) -> None:
    with pytest.raises(ResidentIdError):
        check_digit(bad)


@given(st.from_regex(r"[0-9]{17}", fullmatch=True))
def test_check_digit_matches_the_iso_7064_definition(first17: str) -> None:
    assert check_digit(first17) == iso7064_check(first17)


FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


@st.composite
def typed_ids(draw: st.DrawFn) -> tuple[str, str]:
    """(the ID, what a school typed for it): a valid ID built by the oracle, then decorated
    as spreadsheets and input methods do."""
    region = draw(st.sampled_from(["110101", "130102", "440305", "650102", "820000"]))
    born = draw(st.dates(date(1900, 1, 1), AS_OF))
    first17 = f"{region}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    id_number = first17 + iso7064_check(first17)
    typed = id_number.lower() if draw(st.booleans()) else id_number
    if draw(st.booleans()):
        typed = typed.translate(FULL_WIDTH)
    spaces = st.sampled_from([" ", "\u3000", "\t", "\u00a0", "\u200b", "\ufeff", ""])
    at = sorted(draw(st.lists(st.integers(0, 18), max_size=3)))
    for i in reversed(at):
        typed = typed[:i] + draw(spaces) + typed[i:]
    wrap = draw(st.sampled_from([("", ""), ("'", ""), ('"', '"'), ("“", "”")]))
    return id_number, wrap[0] + typed + wrap[1]


@given(typed_ids())
def test_a_typed_valid_id_validates_to_the_id_the_oracle_reads(case: tuple[str, str]) -> None:
    id_number, typed = case
    assert resident_id(typed) == id_number  # the oracle itself undoes the decoration
    assert validate_resident_id(typed, AS_OF) == id_number


def test_full_width_digits_and_every_kind_of_space_are_normalised() -> None:
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in VALID)  # '1' → '１'
    raw = f"\u3000{full_width[:6]} {full_width[6:14]}\t{full_width[14:]}\u00a0\n"
    assert validate_resident_id(raw, AS_OF) == VALID


def test_lowercase_and_full_width_x_become_capital_x() -> None:
    assert validate_resident_id(WITH_X.lower(), AS_OF) == WITH_X
    assert validate_resident_id(WITH_X[:17] + "ｘ", AS_OF) == WITH_X


@pytest.mark.parametrize(
    "raw",
    [f"'{VALID}", f'"{VALID}"', f"“{VALID}”", f"'{VALID}'", f" '{VALID} ", f"\ufeff{VALID}\u200b"],
    ids=["excel-apostrophe", "quotes", "curly-quotes", "single-quotes", "spaces", "invisible"],
)
def test_excel_text_markers_quotes_and_invisible_characters_are_removed(raw: str) -> None:
    assert validate_resident_id(raw, AS_OF) == VALID


def test_normalise_never_raises_and_leaves_judging_to_validate() -> None:
    assert normalise_resident_id(" 1.10101e+17 ") == "1.10101e+17"
    assert normalise_resident_id("") == ""


def test_a_wrong_check_digit_says_what_it_expected() -> None:
    wrong = "0" if VALID[17] != "0" else "1"
    assert rejection(VALID[:17] + wrong) == f"check digit is {wrong}, expected {VALID[17]}"


def test_an_impossible_birth_date_is_rejected() -> None:
    assert "birth date 20230230 is not a real date" in rejection(make_id(birth="20230230"))


def test_a_leap_day_is_a_real_date() -> None:
    assert validate_resident_id(make_id(birth="20000229"), AS_OF)
    assert "not a real date" in rejection(make_id(birth="19000229"))  # 1900 was not leap


def test_nobody_is_born_after_as_of() -> None:
    assert rejection(make_id(birth="20260502")) == "birth date 20260502 is after 2026-05-01"
    assert validate_resident_id(make_id(birth="20260501"), AS_OF)


def test_as_of_may_be_a_datetime() -> None:
    assert validate_resident_id(VALID, datetime(2026, 5, 1, 9, 30)) == VALID


def test_births_before_1900_are_rejected() -> None:
    assert "before 1900" in rejection(make_id(birth="18991231"))


# Both ends of every range of province codes, and the numbers just outside them.
PROVINCES = [str(n) for n in (11, 15, 21, 23, 31, 37, 41, 46, 50, 54, 61, 65, 71, 81, 82, 83)]
NOT_PROVINCES = [f"{n:02}" for n in (0, 10, 16, 20, 24, 30, 38, 40, 47, 55, 60, 66, 70, 72, 84, 99)]


@pytest.mark.parametrize("province", PROVINCES)
def test_every_province_code_range_is_accepted(province: str) -> None:
    assert validate_resident_id(make_id(region=province + "0101"), AS_OF)


@pytest.mark.parametrize("province", NOT_PROVINCES)
def test_a_region_outside_the_provinces_is_rejected(province: str) -> None:
    message = rejection(make_id(region=province + "0101"))
    assert f"does not start with a province code ({province})" in message


@pytest.mark.parametrize("raw", ["1.10101E+17", "1.10101199003071E+17", "1.10101e+17", "1.1E17"])
def test_excel_scientific_notation_is_named_with_the_fix(raw: str) -> None:
    message = rejection(raw)
    assert "looks like Excel scientific notation" in message
    assert f"({raw})" in message
    assert "format the column as text and re-enter the number" in message


def test_a_trailing_point_zero_from_excel_is_rejected_with_the_fix() -> None:
    message = rejection(VALID + ".0")
    assert "decimal part" in message
    assert "format the column as text" in message


@pytest.mark.parametrize("raw", ["", "   ", "\u3000", "''"])
def test_an_empty_value_says_empty(raw: str) -> None:
    assert rejection(raw) == "resident ID is empty"


def test_a_wrong_length_is_stated() -> None:
    assert rejection(VALID[:17]) == "has 17 characters, expected 18"
    assert rejection(VALID + "1") == "has 19 characters, expected 18"
    assert "15-digit" in rejection(VALID[:15])


def test_a_letter_among_the_first_17_names_its_position() -> None:
    assert rejection(VALID[:4] + "O" + VALID[5:]) == "character 5 is 'O', expected a digit"


def test_a_last_character_other_than_a_digit_or_x_is_rejected() -> None:
    assert rejection(VALID[:17] + "Y") == "last character is 'Y', expected a digit or X"


def test_the_fast_and_normalising_paths_agree() -> None:
    wrong = VALID[:17] + ("0" if VALID[17] != "0" else "1")
    assert validate_resident_id(VALID, AS_OF) == validate_resident_id(f" {VALID} ", AS_OF)
    assert rejection(wrong) == rejection(f" {wrong} ")


def test_masking_keeps_region_and_last_four_only() -> None:
    masked = mask_resident_id(VALID)
    assert masked == VALID[:6] + "********" + VALID[14:]
    assert VALID[6:14] not in masked  # the birth date is personal data


def test_masking_works_on_raw_input_and_never_reveals_a_short_value() -> None:
    assert mask_resident_id(f" {VALID.lower()} ") == VALID[:6] + "*" * 8 + VALID[14:]
    assert mask_resident_id("12345") == "*****"


def test_phone_masking_keeps_prefix_and_last_four() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("138 1234 5678") == "138****5678"
    assert mask_phone("1234") == "****"

"""Phone numbers, resident ID numbers (GB 11643) and passwords."""

from __future__ import annotations

import datetime as dt

import pytest

from app.auth.validators import (
    InvalidInput,
    check_password,
    id_check_character,
    id_number_digest,
    mask_id_number,
    normalize_id_number,
    normalize_phone,
)


@pytest.mark.parametrize(
    "raw",
    ["13800138000", "+86 138 0013 8000", "0086-138-0013-8000", "8613800138000", "(138)00138000"],
)
def test_mainland_mobile_numbers_are_normalized(raw):
    assert normalize_phone(raw) == "13800138000"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "12800138000",
        "1380013800",
        "138001380000",
        "010-65123456",
        "+1 415 555 0100",
        "1380013800a",
    ],
)
def test_other_numbers_are_refused(raw):
    with pytest.raises(InvalidInput):
        normalize_phone(raw)


# GB 11643-1999's own worked example, and a number with the check character X.
@pytest.mark.parametrize("number", ["11010519491231002X", "110105199001010010"])
def test_valid_id_numbers_pass(number):
    assert normalize_id_number(number.lower()) == number


def test_the_check_character_follows_the_standard():
    assert id_check_character("11010519491231002") == "X"
    assert id_check_character("44052418800101001") == "4"


@pytest.mark.parametrize(
    "number, reason",
    [
        ("110105194912310021", "check character"),  # last character wrong
        ("11010519491231002", "17 digits"),  # too short
        ("1101051949123100XX", "17 digits"),
        ("990105194912310027", "province"),
        ("110105194902300029", "birth date"),  # 30 February
        ("110105299001010012", "out of range"),  # born in 2990
    ],
)
def test_invalid_id_numbers_are_refused_with_a_reason(number, reason):
    with pytest.raises(InvalidInput, match=reason):
        normalize_id_number(number, today=dt.date(2026, 11, 22))


def test_id_numbers_are_masked_and_hashed_not_kept():
    number = "11010519491231002X"
    assert mask_id_number(number) == "110***********002X"
    digest = id_number_digest(number, b"k" * 32)
    assert len(digest) == 32 and number.encode() not in digest
    assert digest != id_number_digest(number, b"j" * 32)


@pytest.mark.parametrize(
    "password", ["short1!", "12345678", "password1", "woaini1314", "qwertyuiop", "13800138000x"]
)
def test_weak_passwords_are_refused(password):
    with pytest.raises(InvalidInput):
        check_password(password, user_inputs=("13800138000", "张伟"))


def test_a_strong_password_passes():
    check_password("Correct-Horse-Battery-9", user_inputs=("13800138000", "张伟"))

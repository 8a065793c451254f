"""Identity inputs: mainland mobile numbers, resident ID numbers (GB 11643), passwords."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from functools import cache
from pathlib import Path

from zxcvbn import zxcvbn

from app.core.i18n import _

_PHONE = re.compile(r"^1[3-9]\d{9}$")
_PHONE_NOISE = re.compile(r"[\s\-()]")

# GB 11643-1999: weights of the first 17 digits, and the check character for sum mod 11.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_FORMAT = re.compile(r"^\d{17}[\dX]$")
# Province-level codes (GB/T 2260): the first two digits of every valid number.
_PROVINCES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
        "83",
    ]
)

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
# zxcvbn score (0-4): 2 means "somewhat guessable", safe from throttled online attacks.
PASSWORD_MIN_SCORE = 2


@cache
def _common_passwords_zh() -> tuple[str, ...]:
    lines = (Path(__file__).parent / "common_passwords_zh.txt").read_text().splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


class InvalidInput(ValueError):
    """The value is not acceptable; the message says why (safe to show to the user)."""


def normalize_phone(raw: str) -> str:
    """An 11-digit mainland mobile number from common spellings (+86, spaces, dashes)."""
    phone = _PHONE_NOISE.sub("", raw or "")
    if phone.startswith("+86"):
        phone = phone[3:]
    elif phone.startswith("0086"):
        phone = phone[4:]
    elif len(phone) == 13 and phone.startswith("86"):
        phone = phone[2:]
    if not _PHONE.match(phone):
        raise InvalidInput(_("Not a mainland China mobile number (11 digits starting 13-19)."))
    return phone


def id_check_character(first17: str) -> str:
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def normalize_id_number(raw: str, *, today: dt.date | None = None) -> str:
    """A valid 18-character resident ID number (GB 11643-1999), upper-case X, or InvalidInput."""
    number = (raw or "").strip().upper()
    if not _ID_FORMAT.match(number):
        raise InvalidInput(_("A resident ID number has 17 digits and a final digit or X."))
    if number[:2] not in _PROVINCES:
        raise InvalidInput(_("The resident ID number does not start with a province code."))
    try:
        born = birth_date(number)
    except ValueError as exc:
        raise InvalidInput(_("The birth date in the resident ID number does not exist.")) from exc
    if not dt.date(1900, 1, 1) <= born <= (today or dt.date.today()):
        raise InvalidInput(_("The birth date in the resident ID number is out of range."))
    if id_check_character(number[:17]) != number[17]:
        raise InvalidInput(_("The resident ID number's check character is wrong."))
    return number


def birth_date(number: str) -> dt.date:
    """The birth date in digits 7-14 of a number `normalize_id_number` accepted."""
    return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def age_on(born: dt.date, today: dt.date) -> int:
    """Whole years from `born` to `today`: one more on each birthday (one born on 29 February
    has it on 1 March in other years)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def mask_id_number(number: str) -> str:
    """`110***********1234`: enough to recognise one's own, not enough to identify anyone."""
    return number[:3] + "*" * 11 + number[-4:]


def id_number_digest(number: str, key: bytes) -> bytes:
    """Keyed hash for uniqueness checks; the number itself is never stored."""
    return hmac.new(key, number.encode(), hashlib.sha256).digest()


def check_password(password: str, *, user_inputs: tuple[str, ...] = ()) -> None:
    """Refuse short, long, and easily guessed passwords (common-password and pattern lists of
    zxcvbn, plus the user's own phone and name)."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidInput(
            _(
                "Use at least %(count)s characters.",
                count=PASSWORD_MIN_LENGTH,
            )
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InvalidInput(
            _(
                "Use at most %(count)s characters.",
                count=PASSWORD_MAX_LENGTH,
            )
        )
    inputs = [i for i in user_inputs if i]
    if any(i in password for i in inputs if len(i) >= 4):
        raise InvalidInput(_("The password must not contain your phone number or name."))
    if password.lower() in _common_passwords_zh():
        raise InvalidInput(_("Choose a stronger password: this one is among the most common."))
    result = zxcvbn(password[:100], user_inputs=[*inputs, *_common_passwords_zh()])
    if result["score"] < PASSWORD_MIN_SCORE:
        warning = result["feedback"].get("warning") or "It is too easy to guess."
        raise InvalidInput(_("Choose a stronger password: %(warning)s", warning=warning))

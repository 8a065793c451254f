"""Chinese first: human text follows `Accept-Language` (zh-CN when absent), from gettext catalogs.

The catalogs are app/translations/<locale>/LC_MESSAGES/messages.po, compiled to .mo by
`make translations` (and by `make run`/`make test` when a .po is newer). The source strings
are English; `zh_CN` is the default locale. JSON keys, problem `type` URNs and enum values are
the contract and never translated: only titles, details, field errors, push texts and CSV
headers are.

- `_` (gettext) translates now: for text made while a request (or a forced locale) is current.
- `_l` (lazy_gettext) translates when the text is shown: for module-level constants.
- `N_` only marks a string for extraction; `translated(text)` translates it later.

marshmallow's built-in messages are replaced here, before any schema is defined, by
`Translatable` strings that translate themselves when marshmallow formats them.
"""

from __future__ import annotations

from typing import Any

from babel import Locale
from flask import Flask, Response, has_request_context, request
from flask_babel import Babel, force_locale, get_locale, gettext, lazy_gettext, refresh
from marshmallow import Schema, fields, validate

_ = gettext
_l = lazy_gettext

DEFAULT_LOCALE = "zh_CN"
# What clients may ask for, best first when the request does not say.
SUPPORTED_LOCALES = ("zh_CN", "en")
# Accept-Language tags we answer with each locale's content (BCP 47 names the Chinese ones
# variously: zh, zh-CN, zh-Hans, zh-Hans-CN, zh-SG ...; traditional Chinese falls back to zh-CN,
# which a reader of zh-TW reads more easily than English).
_LANGUAGE_TAGS = {"zh_Hans_CN": "zh-CN", "en": "en"}


def N_(text: str) -> str:
    """Mark `text` for extraction without translating it (it is translated where shown)."""
    return text


def translated(text: str, **variables: Any) -> str:
    """`text` in the current locale (a string marked with `N_`, or a `Translatable`)."""
    return gettext(str.__str__(text), **variables)


# Outside a request the reader is an operator (CLI output, logs): English. What a job makes for
# users (pushes, clue-batch files) chooses its locale itself with `force_locale`.
OPERATOR_LOCALE = "en"


# Set in the request's environ by a page that lets its reader choose (the staff console's
# language switch): per request, where `g` can outlive one (see init_i18n).
CHOSEN_LOCALE = "qunfang.chosen_locale"


def select_locale() -> str:
    """The locale the reader chose in the page, else the best of ours for the request's
    Accept-Language; zh_CN when it names none."""
    if not has_request_context():
        return OPERATOR_LOCALE
    chosen = request.environ.get(CHOSEN_LOCALE)
    if chosen in SUPPORTED_LOCALES:
        return chosen
    for tag, _quality in request.accept_languages:
        language = tag.replace("_", "-").lower().split("-")[0]
        if language == "zh":
            return "zh_CN"
        if language == "en":
            return "en"
    return DEFAULT_LOCALE


def user_locale() -> str:
    """The locale of text made now for a user to read later (a job's output): the request's,
    or zh_CN outside a request."""
    if not has_request_context():
        return DEFAULT_LOCALE
    return str(get_locale() or DEFAULT_LOCALE)


def language_tag() -> str:
    """The BCP 47 tag of the current locale, for Content-Language."""
    locale = get_locale() or Locale.parse(DEFAULT_LOCALE)
    return _LANGUAGE_TAGS.get(str(locale), str(locale).replace("_", "-"))


def content_language(response: Response) -> Response:
    """Answers with text made from the catalogs say its language, and that it varies with the
    request's Accept-Language (so a cache keeps one copy per language)."""
    if response.mimetype in _LOCALISED_MIMETYPES or response.headers.get("Content-Language"):
        response.headers.setdefault("Content-Language", language_tag())
        response.vary.add("Accept-Language")
    return response


_LOCALISED_MIMETYPES = frozenset({"application/problem+json"})


def init_i18n(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    Babel(app, locale_selector=select_locale)
    # The locale is cached on `g`, which outlives a request when an application context was
    # pushed around it (a CLI command, a test): choose it again for every request.
    app.before_request(refresh)
    app.after_request(content_language)


# -- marshmallow's messages --------------------------------------------------------------------


class Translatable(str):
    """An English message that marshmallow formats (`str.format`) as it raises it: formatting
    translates it first. Outside a request it stays English.

    Range composes its templates at construction (`{min_op}`); that step keeps it translatable,
    with the composed English as its message id."""

    _COMPOSING = frozenset({"min_op", "max_op"})

    def format(self, *args: Any, **kwargs: Any) -> str:
        if kwargs and set(kwargs) <= self._COMPOSING:
            return Translatable(str.format(self, *args, **kwargs))
        return gettext(str.__str__(self)).format(*args, **kwargs)


def message_text(message: Any) -> str:
    """A field error as shown: a `Translatable` left unformatted by marshmallow (the schema-level
    ones) translated now, any other text as it is."""
    if isinstance(message, Translatable):
        return gettext(str.__str__(message))
    return str(message)


def _t(text: str) -> Translatable:
    return Translatable(text)


_FIELD_MESSAGES: dict[type, dict[str, Translatable]] = {
    fields.Field: {
        "required": _t(N_("Missing data for required field.")),
        "null": _t(N_("Field may not be null.")),
        "validator_failed": _t(N_("Invalid value.")),
    },
    fields.Nested: {"type": _t(N_("Invalid type."))},
    fields.List: {"invalid": _t(N_("Not a valid list."))},
    fields.Tuple: {"invalid": _t(N_("Not a valid tuple."))},
    fields.String: {
        "invalid": _t(N_("Not a valid string.")),
        "invalid_utf8": _t(N_("Not a valid utf-8 string.")),
    },
    fields.UUID: {"invalid_uuid": _t(N_("Not a valid UUID."))},
    fields.Number: {
        "invalid": _t(N_("Not a valid number.")),
        "too_large": _t(N_("Number too large.")),
    },
    fields.Integer: {"invalid": _t(N_("Not a valid integer."))},
    fields.Decimal: {
        "special": _t(N_("Special numeric values (nan or infinity) are not permitted."))
    },
    fields.Float: {
        "special": _t(N_("Special numeric values (nan or infinity) are not permitted."))
    },
    fields.Boolean: {"invalid": _t(N_("Not a valid boolean."))},
    fields.DateTime: {
        "invalid": _t(N_("Not a valid {obj_type}.")),
        "invalid_awareness": _t(N_("Not a valid {awareness} {obj_type}.")),
        "format": _t(N_('"{input}" cannot be formatted as a {obj_type}.')),
    },
    fields.Date: {
        "invalid": _t(N_("Not a valid date.")),
        "format": _t(N_('"{input}" cannot be formatted as a date.')),
    },
    fields.TimeDelta: {
        "invalid": _t(N_("Not a valid period of time.")),
        "format": _t(N_("{input!r} cannot be formatted as a timedelta.")),
    },
    fields.Mapping: {"invalid": _t(N_("Not a valid mapping type."))},
    fields.Url: {"invalid": _t(N_("Not a valid URL."))},
    fields.Email: {"invalid": _t(N_("Not a valid email address."))},
    fields.IP: {"invalid_ip": _t(N_("Not a valid IP address."))},
    fields.Enum: {"unknown": _t(N_("Must be one of: {choices}."))},
}

_VALIDATOR_MESSAGES: dict[type, dict[str, Translatable]] = {
    validate.URL: {"default_message": _t(N_("Not a valid URL."))},
    validate.Email: {"default_message": _t(N_("Not a valid email address."))},
    validate.Range: {
        # Composed at construction into the _RANGE_COMPOSED message ids below.
        "message_min": _t("Must be {min_op} {{min}}."),
        "message_max": _t("Must be {max_op} {{max}}."),
        "message_all": _t("Must be {min_op} {{min}} and {max_op} {{max}}."),
    },
    validate.Length: {
        "message_min": _t(N_("Shorter than minimum length {min}.")),
        "message_max": _t(N_("Longer than maximum length {max}.")),
        "message_all": _t(N_("Length must be between {min} and {max}.")),
        "message_equal": _t(N_("Length must be {equal}.")),
    },
    validate.Equal: {"default_message": _t(N_("Must be equal to {other}."))},
    validate.Regexp: {"default_message": _t(N_("String does not match expected pattern."))},
    validate.Predicate: {"default_message": _t(N_("Invalid input."))},
    validate.NoneOf: {"default_message": _t(N_("Invalid input."))},
    validate.OneOf: {"default_message": _t(N_("Must be one of: {choices}."))},
    validate.ContainsOnly: {
        "default_message": _t(N_("One or more of the choices you made was not in: {choices}."))
    },
    validate.ContainsNoneOf: {
        "default_message": _t(N_("One or more of the choices you made was in: {values}."))
    },
}

# Range's composed templates, as message ids of their own (see Translatable).
_RANGE_COMPOSED = (
    N_("Must be greater than or equal to {min}."),
    N_("Must be greater than {min}."),
    N_("Must be less than or equal to {max}."),
    N_("Must be less than {max}."),
    N_("Must be greater than or equal to {min} and less than or equal to {max}."),
    N_("Must be greater than or equal to {min} and less than {max}."),
    N_("Must be greater than {min} and less than or equal to {max}."),
    N_("Must be greater than {min} and less than {max}."),
)


def _install_marshmallow_messages() -> None:
    for field_class, messages in _FIELD_MESSAGES.items():
        field_class.default_error_messages = {
            **field_class.__dict__.get("default_error_messages", {}),
            **messages,
        }
    for validator_class, attributes in _VALIDATOR_MESSAGES.items():
        for name, message in attributes.items():
            setattr(validator_class, name, message)
    # `error_messages`, marshmallow's public override, read along each schema's MRO (ours first).
    Schema.error_messages = {
        **Schema.error_messages,
        "type": _t(N_("Invalid input type.")),
        "unknown": _t(N_("Unknown field.")),
    }


_install_marshmallow_messages()

__all__ = [
    "DEFAULT_LOCALE",
    "N_",
    "SUPPORTED_LOCALES",
    "_",
    "_l",
    "force_locale",
    "init_i18n",
    "message_text",
    "translated",
    "user_locale",
]

"""Column codecs: how values are stored compactly, presented and parsed.

Rows hold small, order-preserving encodings rather than rich objects: UUIDs and
timestamps as integers, money as an integer of minor units, nested objects as
JSON bytes. Comparing two encoded values orders them exactly as their decoded
values would, so filters and sorts work on the encodings directly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import orjson

from store.schema import Column, Kind

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)

EXPECTED = {
    Kind.UUID: "a UUID",
    Kind.STR: "text",
    Kind.ENUM: "one of the listed values",
    Kind.INT: "a whole number",
    Kind.BOOL: "true or false",
    Kind.DECIMAL: "a decimal number",
    Kind.DATETIME: "a date (YYYY-MM-DD) or an ISO 8601 datetime",
    Kind.JSON: "a JSON value",
}
"""What each kind of column takes, in words a client understands."""


class BadValue(ValueError):
    """A value a column cannot take; its message is plain words meant for whoever sent the value."""


def reason(error: Exception, kind: Kind) -> str:
    """Why a value of ``kind`` was refused, for a client: a codec's own words, never a library's exception text."""
    return str(error) if isinstance(error, BadValue) else f"expected {EXPECTED[kind]}"


def datetime_to_micros(value: datetime) -> int:
    """Microseconds since the epoch; naive datetimes are taken as UTC."""
    # Reading the timedelta's fields costs half of ``delta // timedelta(microseconds=1)``.
    delta = value - (_NAIVE_EPOCH if value.tzinfo is None else EPOCH)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def micros_to_text(micros: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``: fixed width, so it also sorts as text."""
    # Positional (days, seconds, microseconds): a third cheaper than ``timedelta(microseconds=...)``.
    seconds, fraction = divmod(micros, 1_000_000)
    moment = _NAIVE_EPOCH + timedelta(0, seconds, fraction)
    return moment.isoformat(timespec="microseconds") + "Z"


def micros_to_datetime(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def parse_datetime_text(text: str) -> int:
    """A date (midnight UTC) or an ISO 8601 datetime, as microseconds."""
    try:
        if len(text) == 10:
            return datetime_to_micros(datetime.combine(date.fromisoformat(text), datetime.min.time()))
        return datetime_to_micros(datetime.fromisoformat(text))
    except ValueError:
        raise BadValue(f"expected {EXPECTED[Kind.DATETIME]}") from None


def parse_json_scalar(text: str) -> Any:
    """The JSON scalar ``text`` spells (``true``, ``3``, ``null``), else the string itself."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return value if not isinstance(value, dict | list) else text


class Codec:
    """Encode, present and parse the values of one column."""

    __slots__ = ("column", "encode", "parse", "present")

    def __init__(
        self,
        column: Column,
        encode: Callable[[Any], Any],
        present: Callable[[Any], Any],
        parse: Callable[[str], Any],
    ) -> None:
        self.column = column
        self.encode = encode
        self.present = present
        self.parse = parse


def _identity(value: Any) -> Any:
    return value


def _encode_uuid(value: Any) -> int:
    return (value if isinstance(value, UUID) else UUID(str(value))).int


def _present_uuid(value: int) -> str:
    # What ``str(UUID(int=value))`` returns, without building (and validating) a UUID: a third of the cost.
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _parse_uuid(text: str) -> int:
    return UUID(text).int


def _parse_int(text: str) -> int:
    return int(text)


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadValue("expected true or false")


def _encode_int(value: Any) -> int:
    number = int(value)
    if isinstance(value, float | Decimal) and number != value:
        raise BadValue("expected a whole number")
    return number


def _encode_bool(value: Any) -> bool:
    if isinstance(value, str):
        return _parse_bool(value)
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    raise BadValue("expected true or false")


def _encode_datetime(value: Any) -> int:
    if isinstance(value, datetime):
        return datetime_to_micros(value)
    if isinstance(value, int):
        return value
    return parse_datetime_text(str(value))


NOT_JSON = "cannot be stored as JSON: it holds a lone surrogate, an integer past 64 bits or a non-JSON value"


def _encode_json(value: Any) -> bytes:
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError:
        raise BadValue(NOT_JSON) from None
    # orjson's result sits in an allocation of several kilobytes whatever its length;
    # a row keeps it for good, so keep an exact-size copy instead (40 bytes, not 4 KB).
    return bytes(memoryview(encoded))


def _present_json(value: bytes) -> orjson.Fragment:
    return orjson.Fragment(value)


def _decimal_codec(scale: int) -> tuple[Callable[[Any], int], Callable[[int], str], Callable[[str], Any]]:
    def encode(value: Any) -> int:
        scaled = (value if type(value) is Decimal else Decimal(value)).scaleb(scale)
        number = int(scaled)  # truncates; equal to ``scaled`` only if nothing was cut off
        if number != scaled:
            raise BadValue(f"more than {scale} decimal places")
        return number

    def present(value: int) -> str:
        return str(Decimal(value).scaleb(-scale))

    def parse(text: str) -> Any:
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise BadValue("expected a decimal number") from None
        if not number.is_finite():
            raise BadValue("expected a finite decimal number")
        try:
            return number.scaleb(scale)
        except ArithmeticError:  # past the decimal context's exponent range, e.g. 1e999999999
            raise BadValue("the number is out of range") from None

    return encode, present, parse


def _choice_codec(column: Column) -> tuple[Callable[[Any], str], Callable[[str], str]]:
    choices = {sys.intern(choice): sys.intern(choice) for choice in column.choices}

    def encode(value: Any) -> str:
        # A str (a StrEnum member too) is looked up as it is: reading an enum member's ``value`` costs more.
        found = choices.get(value) if isinstance(value, str) else None
        if found is not None:
            return found
        text = str(getattr(value, "value", value))
        try:
            return choices[text]
        except KeyError:
            raise BadValue(f"must be one of {', '.join(column.choices)}") from None

    return encode, encode


def codec_for(column: Column) -> Codec:
    """The codec for ``column``'s kind."""
    kind = column.kind
    if kind is Kind.UUID:
        return Codec(column, _encode_uuid, _present_uuid, _parse_uuid)
    if kind is Kind.STR:
        return Codec(column, str, _identity, _identity)
    if kind is Kind.ENUM:
        encode_choice, parse_choice = _choice_codec(column)
        return Codec(column, encode_choice, _identity, parse_choice)
    if kind is Kind.INT:
        return Codec(column, _encode_int, _identity, _parse_int)
    if kind is Kind.BOOL:
        return Codec(column, _encode_bool, _identity, _parse_bool)
    if kind is Kind.DECIMAL:
        return Codec(column, *_decimal_codec(column.scale))
    if kind is Kind.DATETIME:
        return Codec(column, _encode_datetime, micros_to_text, parse_datetime_text)
    return Codec(column, _encode_json, _present_json, parse_json_scalar)

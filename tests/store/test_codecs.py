"""Column codecs: compact encodings that present, parse and order like the values they stand for."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import orjson
import pytest

from store.codecs import (
    BadValue,
    codec_for,
    datetime_to_micros,
    micros_to_datetime,
    micros_to_text,
    parse_datetime_text,
    parse_json_scalar,
)
from store.schema import Column, Kind

from .conftest import STATUSES


class Status(enum.Enum):
    PAID = "paid"


def test_naive_datetimes_are_taken_as_utc() -> None:
    naive = datetime(2024, 5, 6, 7, 8, 9, 123456)
    assert datetime_to_micros(naive) == datetime_to_micros(naive.replace(tzinfo=UTC))


def test_offsets_are_converted_to_utc() -> None:
    paris = datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert datetime_to_micros(paris) == datetime_to_micros(datetime(2024, 1, 1, tzinfo=UTC))


def test_micros_render_as_fixed_width_utc_text_that_sorts_like_time() -> None:
    assert micros_to_text(0) == "1970-01-01T00:00:00.000000Z"
    earlier = micros_to_text(datetime_to_micros(datetime(2024, 1, 1, 9, 59, 59, 999999, tzinfo=UTC)))
    later = micros_to_text(datetime_to_micros(datetime(2024, 1, 1, 10, tzinfo=UTC)))
    assert later == "2024-01-01T10:00:00.000000Z"
    assert len(earlier) == len(later)
    assert earlier < later


def test_micros_round_trip_to_an_aware_datetime() -> None:
    moment = datetime(2024, 2, 29, 23, 59, 59, 1, tzinfo=UTC)
    assert micros_to_datetime(datetime_to_micros(moment)) == moment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024-03-01T12:30:00Z", datetime(2024, 3, 1, 12, 30, tzinfo=UTC)),
        ("2024-03-01T12:30:00+02:00", datetime(2024, 3, 1, 10, 30, tzinfo=UTC)),
        ("2024-03-01T12:30:00.000001", datetime(2024, 3, 1, 12, 30, 0, 1, tzinfo=UTC)),
    ],
)
def test_date_and_datetime_text_parse_to_micros(text: str, expected: datetime) -> None:
    assert parse_datetime_text(text) == datetime_to_micros(expected)


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "2024-02-30", ""])
def test_unparseable_dates_are_refused_with_a_helpful_message(text: str) -> None:
    with pytest.raises(ValueError, match="expected a date"):
        parse_datetime_text(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("false", False), ("3", 3), ("2.5", 2.5), ("null", None), ('"quoted"', "quoted")],
)
def test_json_scalars_parse_as_the_scalar_they_spell(text: str, expected: object) -> None:
    value = parse_json_scalar(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("text", ["web", "[1, 2]", '{"a": 1}', ""])
def test_anything_else_parses_as_the_string_itself(text: str) -> None:
    assert parse_json_scalar(text) == text


def test_uuid_codec_accepts_text_or_uuid_and_presents_canonical_text() -> None:
    codec = codec_for(Column("id", Kind.UUID))
    value = UUID("12345678-1234-5678-1234-567812345678")
    assert codec.encode(value) == codec.encode(str(value).upper()) == value.int
    assert codec.present(value.int) == str(value)
    assert codec.parse(str(value)) == value.int
    with pytest.raises(ValueError, match="badly formed"):
        codec.encode("not-a-uuid")
    with pytest.raises(ValueError, match="badly formed"):
        codec.parse("12")


@pytest.mark.parametrize(
    "text",
    [
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "000000ff-0000-4000-8000-00000000000a",
    ],
)
def test_a_uuid_is_presented_as_the_standard_library_writes_it(text: str) -> None:
    codec = codec_for(Column("id", Kind.UUID))
    assert codec.present(codec.encode(text)) == str(UUID(text)) == text


def test_str_codec_keeps_text_as_is() -> None:
    codec = codec_for(Column("name", Kind.STR))
    assert codec.encode("Ada") == "Ada"
    assert codec.present("Ada") == "Ada"
    assert codec.parse("Ada") == "Ada"


def test_enum_codec_accepts_only_its_choices() -> None:
    codec = codec_for(Column("status", Kind.ENUM, choices=STATUSES))
    assert codec.encode("paid") == "paid"
    assert codec.encode(Status.PAID) == "paid"
    assert codec.parse("shipped") == "shipped"
    assert codec.present("paid") == "paid"
    with pytest.raises(ValueError, match="must be one of pending, paid, shipped, cancelled"):
        codec.encode("lost")
    with pytest.raises(ValueError, match="must be one of"):
        codec.parse("PAID")


def test_int_codec_coerces_laxly_but_never_truncates() -> None:
    codec = codec_for(Column("n", Kind.INT))
    assert codec.encode(3) == 3
    assert codec.encode("3") == 3
    assert codec.encode(3.0) == 3
    assert codec.encode(Decimal("4")) == 4
    assert codec.parse("-7") == -7
    for fractional in (3.7, Decimal("2.5")):
        with pytest.raises(ValueError, match="whole number"):
            codec.encode(fractional)
    with pytest.raises(ValueError, match="invalid literal"):
        codec.parse("three")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (1, True), (0, False), ("true", True), ("FALSE", False), ("0", False)],
)
def test_bool_codec_encodes_true_and_false_faithfully(value: object, expected: bool) -> None:
    assert codec_for(Column("flag", Kind.BOOL)).encode(value) is expected


@pytest.mark.parametrize("value", ["yes", "", 2, [True]])
def test_bool_codec_refuses_values_that_are_not_booleans(value: object) -> None:
    with pytest.raises(ValueError, match="expected true or false"):
        codec_for(Column("flag", Kind.BOOL)).encode(value)


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("1", True), ("False", False), ("0", False)])
def test_bool_filters_parse_true_and_false(text: str, expected: bool) -> None:
    assert codec_for(Column("flag", Kind.BOOL)).parse(text) is expected


def test_bool_filters_refuse_other_text() -> None:
    with pytest.raises(ValueError, match="expected true or false"):
        codec_for(Column("flag", Kind.BOOL)).parse("maybe")


def test_money_is_stored_as_minor_units_and_presented_with_its_scale() -> None:
    codec = codec_for(Column("amount", Kind.DECIMAL, scale=2))
    assert codec.encode("19.9") == 1990
    assert codec.encode(Decimal("19.90")) == 1990
    assert codec.encode(5) == 500
    assert codec.present(1990) == "19.90"
    assert codec.present(500) == "5.00"
    assert codec.present(7) == "0.07"


def test_money_with_too_many_decimal_places_is_refused() -> None:
    codec = codec_for(Column("amount", Kind.DECIMAL, scale=2))
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        codec.encode("1.005")


def test_money_encodings_order_as_numbers_not_as_text() -> None:
    codec = codec_for(Column("amount", Kind.DECIMAL, scale=2))
    assert "10.00" < "9.99"
    assert codec.encode("10.00") > codec.encode("9.99")


def test_money_filters_parse_to_the_same_scale_as_stored_values() -> None:
    codec = codec_for(Column("amount", Kind.DECIMAL, scale=2))
    assert codec.parse("19.9") == 1990
    assert codec.parse("19.905") == Decimal("1990.5")


@pytest.mark.parametrize(("text", "message"), [("cheap", "decimal number"), ("NaN", "finite"), ("Infinity", "finite")])
def test_money_filters_refuse_non_numbers(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        codec_for(Column("amount", Kind.DECIMAL, scale=2)).parse(text)


def test_datetime_codec_accepts_datetimes_micros_and_text() -> None:
    codec = codec_for(Column("at", Kind.DATETIME))
    moment = datetime(2024, 6, 1, 12, tzinfo=UTC)
    micros = datetime_to_micros(moment)
    assert codec.encode(moment) == micros
    assert codec.encode(micros) == micros
    assert codec.encode("2024-06-01T12:00:00Z") == micros
    assert codec.present(micros) == "2024-06-01T12:00:00.000000Z"
    assert codec.parse("2024-06-01") == datetime_to_micros(datetime(2024, 6, 1, tzinfo=UTC))


def test_json_codec_stores_bytes_and_presents_them_verbatim() -> None:
    codec = codec_for(Column("metadata", Kind.JSON))
    encoded = codec.encode({"source": "web", "tags": [1, 2]})
    assert isinstance(encoded, bytes)
    assert orjson.loads(orjson.dumps({"m": codec.present(encoded)})) == {"m": {"source": "web", "tags": [1, 2]}}
    assert codec.parse("3") == 3
    with pytest.raises(BadValue, match="cannot be stored as JSON"):
        codec.encode({1, 2})

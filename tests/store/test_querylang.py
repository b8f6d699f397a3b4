"""The query language: ``field__op=value`` and ``sort=`` parse into typed queries, or fail naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from store import InvalidQuery, Predicate, Query, QueryParser, SortKey
from store.codecs import datetime_to_micros

from .conftest import CHILD, PARENT, uid

CHILDREN = QueryParser(CHILD)
PARENTS = QueryParser(PARENT)


def micros(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return datetime_to_micros(datetime(year, month, day, hour, minute, tzinfo=UTC))


@pytest.mark.parametrize(
    ("parameter", "text", "expected"),
    [
        ("status", "paid", Predicate(("status",), "eq", "paid")),
        ("status__eq", "paid", Predicate(("status",), "eq", "paid")),
        ("status__ne", "paid", Predicate(("status",), "ne", "paid")),
        ("quantity__gt", "3", Predicate(("quantity",), "gt", 3)),
        ("quantity__gte", "3", Predicate(("quantity",), "gte", 3)),
        ("quantity__lt", "-3", Predicate(("quantity",), "lt", -3)),
        ("quantity__lte", "0", Predicate(("quantity",), "lte", 0)),
        ("status__in", "paid,shipped", Predicate(("status",), "in", ("paid", "shipped"))),
        ("label__contains", "Wid", Predicate(("label",), "contains", "Wid")),
        ("amount", "19.9", Predicate(("amount",), "eq", Decimal("1990"))),
        ("parent_id", str(uid(7)), Predicate(("parent_id",), "eq", uid(7).int)),
        ("created_at__gte", "2024-01-02", Predicate(("created_at",), "gte", micros(2024, 1, 2))),
    ],
)
def test_filters_parse_with_the_columns_type(parameter: str, text: str, expected: Predicate) -> None:
    assert CHILDREN.predicate(parameter, text) == expected


def test_null_is_a_value_only_for_nullable_fields_and_only_for_equality() -> None:
    assert CHILDREN.predicate("quantity", "null") == Predicate(("quantity",), "eq", None)
    assert CHILDREN.predicate("quantity__ne", "null") == Predicate(("quantity",), "ne", None)
    assert CHILDREN.predicate("quantity__in", "1,null") == Predicate(("quantity",), "in", (1, None))
    assert CHILDREN.predicate("label", "null") == Predicate(("label",), "eq", "null")
    with pytest.raises(InvalidQuery) as info:
        CHILDREN.predicate("quantity__gt", "null")
    assert info.value.parameter == "quantity__gt"


@pytest.mark.parametrize(
    ("parameter", "text", "expected"),
    [
        ("address.city", "Paris", Predicate(("address", "city"), "eq", "Paris")),
        ("address.floor__gte", "2", Predicate(("address", "floor"), "gte", 2)),
        ("address.city", "null", Predicate(("address", "city"), "eq", None)),
        ("address.city__contains", "par", Predicate(("address", "city"), "contains", "par")),
        ("metadata.source", "web", Predicate(("metadata", "source"), "eq", "web")),
        ("metadata.count", "3", Predicate(("metadata", "count"), "eq", 3)),
        ("metadata.flag__ne", "true", Predicate(("metadata", "flag"), "ne", True)),
        ("metadata.a.b.c", "null", Predicate(("metadata", "a", "b", "c"), "eq", None)),
        ("metadata.tags__in", "a,1,null", Predicate(("metadata", "tags"), "in", ("a", 1, None))),
        ("metadata.note__contains", "x", Predicate(("metadata", "note"), "contains", "x")),
        ("metadata", "null", Predicate(("metadata",), "eq", None)),
        ("metadata__ne", "null", Predicate(("metadata",), "ne", None)),
    ],
)
def test_dot_paths_parse_with_declared_types_or_as_json_scalars(parameter: str, text: str, expected: Predicate) -> None:
    assert CHILDREN.predicate(parameter, text) == expected


@pytest.mark.parametrize(
    ("parameter", "text", "expected"),
    [
        ("created_after", "2024-01-02", Predicate(("created_at",), "gt", micros(2024, 1, 2))),
        ("created_before", "2024-01-02T10:30:00Z", Predicate(("created_at",), "lt", micros(2024, 1, 2, 10, 30))),
        ("updated_after", "2024-01-02T00:00:00+01:00", Predicate(("updated_at",), "gt", micros(2024, 1, 1, 23))),
        ("due_after", "2024-03-01", Predicate(("due",), "gt", micros(2024, 3, 1))),
        ("due_before", "2024-03-01", Predicate(("due",), "lt", micros(2024, 3, 1))),
    ],
)
def test_after_and_before_are_strict_ranges_on_datetime_fields(parameter: str, text: str, expected: Predicate) -> None:
    assert CHILDREN.predicate(parameter, text) == expected


@pytest.mark.parametrize(
    ("parameter", "text", "message"),
    [
        ("colour", "red", "unknown field 'colour'"),
        ("colour__in", "red", "unknown field 'colour'"),
        ("status__like", "paid", "unknown operator 'like'"),
        ("status__", "paid", "unknown operator ''"),
        ("status__in__ne", "paid", "unknown operator 'in__ne'"),
        ("status", "lost", "cannot parse 'lost': must be one of pending, paid, shipped, cancelled"),
        ("status__in", "paid,lost", "cannot parse 'paid,lost'"),
        ("quantity", "many", "cannot parse 'many': expected a whole number"),  # not int()'s "invalid literal"
        ("quantity__in", "1,x", "cannot parse '1,x': expected a whole number"),
        ("amount__gt", "cheap", "cannot parse 'cheap': expected a decimal number"),
        ("amount__gte", "1e999999999", "cannot parse '1e999999999': the number is out of range"),  # decimal.Overflow
        ("amount", "NaN", "cannot parse 'NaN': expected a finite decimal number"),
        ("parent_id", "42", "cannot parse '42': expected a UUID"),  # not UUID()'s "badly formed hexadecimal"
        ("created_at", "yesterday", "cannot parse 'yesterday'"),
        ("created_after", "yesterday", "cannot parse 'yesterday'"),
        ("due_before", "2024-02-30", "cannot parse '2024-02-30'"),
        ("amount__contains", "9", "'contains' applies only to text fields"),
        ("quantity__contains", "1", "'contains' applies only to text fields"),
        ("address.floor__contains", "1", "'contains' applies only to text fields"),
        ("label.first", "x", "'label' has no nested fields"),
        ("address.country", "FR", "unknown field 'address.country'"),
        ("address.city.name", "x", "unknown field 'address.city.name'"),
        ("address.floor", "third", "cannot parse 'third': expected a whole number"),
        ("metadata..source", "x", "unknown field 'metadata..source'"),
        ("metadata.", "x", "unknown field 'metadata.'"),
        ("", "x", "unknown field ''"),
        ("metadata", "web", "'metadata' is an object"),
        ("metadata__contains", "web", "'metadata' is an object"),
        ("address__gt", "1", "'address' is an object"),
        ("address__in", "null", "'address' is an object"),
    ],
)
def test_what_cannot_be_understood_is_an_invalid_query_naming_the_parameter(
    parameter: str, text: str, message: str
) -> None:
    with pytest.raises(InvalidQuery) as info:
        CHILDREN.predicate(parameter, text)
    assert info.value.parameter == parameter
    assert message in info.value.reason  # our own words, whole where the table spells them out
    assert info.value.message.startswith(f"{parameter}: ")


def test_hidden_columns_can_be_neither_filtered_nor_sorted() -> None:
    with pytest.raises(InvalidQuery, match="unknown field 'secret'"):
        PARENTS.predicate("secret", "x")
    with pytest.raises(InvalidQuery, match="unknown field 'secret'"):
        PARENTS.sort("secret")


def test_a_suffix_that_names_no_datetime_field_is_an_unknown_field() -> None:
    for parameter in ("label_after", "nothing_before", "status_after"):
        with pytest.raises(InvalidQuery, match="unknown field") as info:
            CHILDREN.predicate(parameter, "2024-01-01")
        assert info.value.parameter == parameter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amount", (SortKey("amount"),)),
        ("amount:asc", (SortKey("amount"),)),
        ("amount:desc", (SortKey("amount", True),)),
        ("status, amount:desc ,created_at", (SortKey("status"), SortKey("amount", True), SortKey("created_at"))),
        ("address", None),
    ],
)
def test_sort_specs_parse_into_keys(text: str, expected: tuple[SortKey, ...] | None) -> None:
    if expected is None:
        with pytest.raises(InvalidQuery, match="cannot sort by the nested object 'address'") as info:
            CHILDREN.sort(text)
        assert info.value.parameter == "sort"
    else:
        assert CHILDREN.sort(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour", "unknown field 'colour'"),
        ("amount,", "unknown field ''"),
        ("amount:up", "direction must be 'asc' or 'desc', not 'up'"),
        ("amount:DESC", "not 'DESC'"),
        ("address.city", "unknown field 'address.city'"),
        ("metadata", "nested object"),
    ],
)
def test_bad_sort_specs_are_invalid_queries_naming_sort(text: str, message: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        CHILDREN.sort(text)
    assert info.value.parameter == "sort"
    assert message in info.value.reason


def test_parse_builds_the_whole_query() -> None:
    query = CHILDREN.parse([("status", "paid"), ("quantity__gt", "1")], "amount:desc", page=3, per_page=7)
    assert query == Query(
        (Predicate(("status",), "eq", "paid"), Predicate(("quantity",), "gt", 1)),
        (SortKey("amount", True),),
        3,
        7,
    )


def test_no_sort_or_an_empty_sort_leaves_the_default_order_to_the_table() -> None:
    assert CHILDREN.parse([], None) == Query()
    assert CHILDREN.parse([], "") == Query()


def test_repeated_parameters_all_apply() -> None:
    query = CHILDREN.parse([("quantity__gt", "1"), ("quantity__gt", "5")], None)
    assert query.predicates == (Predicate(("quantity",), "gt", 1), Predicate(("quantity",), "gt", 5))


def test_the_first_bad_parameter_stops_parsing() -> None:
    with pytest.raises(InvalidQuery) as info:
        CHILDREN.parse([("status", "paid"), ("size", "L"), ("colour", "red")], None)
    assert info.value.parameter == "size"

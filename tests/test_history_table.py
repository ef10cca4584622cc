"""A Table holds an observation's rows by column and shows them as read-only mappings, like the dicts it replaced."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.history.ops import Observation
from harness.history.table import ABSENT, Row, Table

ROWS = ({"a": 1, "b": "x"}, {"b": "y", "c": None}, {"a": True, "b": "x", "c": 2.5})


def test_rows_read_like_the_dicts_they_came_from() -> None:
    table = Table.from_rows(ROWS)
    assert len(table) == 3 and table.names == ("a", "b", "c")
    assert [dict(r) for r in table] == list(ROWS)
    second = table[1]
    assert isinstance(second, Row)
    assert second["b"] == "y" and second.get("a") is None and second.get("a", 7) == 7
    assert "a" not in second and "c" in second and second["c"] is None  # None is a value, not an absence
    with pytest.raises(KeyError):
        second["a"]
    with pytest.raises(KeyError):
        second["nowhere"]
    assert len(second) == 2 and list(second) == ["b", "c"]
    assert table[-1] == ROWS[2] and [dict(r) for r in table[1:]] == list(ROWS[1:])
    with pytest.raises(IndexError):
        table[3]


def test_a_table_equals_any_sequence_of_equal_mappings() -> None:
    table = Table.from_rows(ROWS)
    assert table == ROWS and table == tuple(MappingProxyType(r) for r in ROWS) and table == Table.from_rows(ROWS)
    assert table != ROWS[:2] and table != (*ROWS[:2], {"a": 1})
    assert Table.from_rows(()) == () and Table.from_rows([]) == []


def test_columns_give_the_default_where_a_row_lacks_the_field() -> None:
    table = Table.from_rows(ROWS)
    assert table.column("b") == ("x", "y", "x")
    assert table.column("a", "-") == (1, "-", True)
    assert table.column("nowhere", 0) == (0, 0, 0)
    assert table.strict("b") == ("x", "y", "x")
    with pytest.raises(KeyError):
        table.strict("a")
    assert ABSENT not in table.column("c")


def test_an_observation_holds_whatever_rows_it_is_given_as_a_table() -> None:
    obs = Observation("topic", tuple(MappingProxyType(r) for r in ROWS))
    assert isinstance(obs.rows, Table) and obs.rows == ROWS
    assert Observation("topic", obs.rows).rows is obs.rows


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=3))


@given(st.lists(st.dictionaries(st.sampled_from("abcd"), scalars, max_size=4), max_size=8))
def test_any_rows_come_back_as_they_went_in(rows: list[dict[str, object]]) -> None:
    table = Table.from_rows(rows)
    assert [dict(r) for r in table] == rows
    for name in "abcd":
        assert table.column(name, ABSENT) == tuple(r.get(name, ABSENT) for r in rows)

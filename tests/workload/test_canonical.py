"""The numpy parsers of canonical trace cells give Arrow's values, or decline."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.workload import canonical
from infsim.workload.formats_csv import _PLAIN_STAMP


def _arrow_ints(cells: list[str]) -> np.ndarray | None:
    try:
        return pc.cast(pa.array(cells, pa.string()), pa.int64()).to_numpy()
    except pa.ArrowInvalid:
        return None


digit_text = st.text("0123456789", min_size=1, max_size=18)
odd_text = st.sampled_from(["", " 1", "1 ", "+1", "-1", "1.0", "1e3", "０", "x", "9" * 19])


@settings(max_examples=300, deadline=None)
@given(st.lists(digit_text | odd_text, min_size=1, max_size=20), st.integers(0, 3))
def test_digit_cells_are_arrows_ints_or_decline(cells, cut) -> None:
    array = pa.array(cells, pa.string()).slice(min(cut, len(cells) - 1))
    got = canonical.digit_cells(array)
    plain = all(re.fullmatch(r"[0-9]{1,18}", c) for c in array.to_pylist())
    assert (got is not None) == plain
    if got is not None:
        np.testing.assert_array_equal(got, _arrow_ints(array.to_pylist()))


def _arrow_stamps(cells: list[str]) -> np.ndarray | None:
    """What the Azure reader's Arrow path gives (`_PLAIN_STAMP` and Arrow's cast)."""
    if not all(re.fullmatch(_PLAIN_STAMP, c) for c in cells):
        return None
    try:
        return pc.cast(pa.array(cells), pa.timestamp("ns")).cast(pa.int64()).to_numpy()
    except pa.ArrowInvalid:
        return None


@st.composite
def stamps(draw) -> str:
    year = draw(st.integers(1895, 2205))
    month = draw(st.integers(0, 13))
    day = draw(st.integers(0, 32))
    hour, minute, second = draw(st.integers(0, 25)), draw(st.integers(0, 60)), draw(
        st.integers(0, 61))  # fmt: skip
    sep = draw(st.sampled_from([" ", "T", " ", "_"]))
    text = f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}"
    fraction = draw(st.sampled_from(["", "", ".", ".5", ".9799600", ".123456789",
                                     ".1234567891", ",5", "Z", "+00:00"]))  # fmt: skip
    return text + fraction


@settings(max_examples=600, deadline=None)
@given(st.lists(stamps(), min_size=1, max_size=6))
def test_plain_stamps_are_arrows_or_decline(cells) -> None:
    got = canonical.plain_stamps_ns(pa.array(cells, pa.string()))
    expected = _arrow_stamps(cells)
    if got is not None:
        assert expected is not None
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "cell",
    ["2023-11-16 18:17:03.9799600", "2024-02-29T23:59:59", "1900-01-01 00:00:00.000000001",
     "2199-12-31 23:59:59.999999999", "2000-02-29 12:00:00.5", "1970-01-01 00:00:00"],
)  # fmt: skip
def test_plain_stamps_take_every_canonical_form(cell) -> None:
    got = canonical.plain_stamps_ns(pa.array([cell, cell]))
    assert got is not None
    np.testing.assert_array_equal(got, _arrow_stamps([cell, cell]))


@pytest.mark.parametrize(
    "cell",
    ["2023-02-29 00:00:00", "1900-02-29 00:00:00", "2023-04-31 00:00:00",
     "2023-01-01 24:00:00", "2023-01-01 00:00:60", "1899-12-31 23:59:59",
     "2023-01-01 00:00:00.", "2023-01-01 00:00:00Z", "2023-1-01 00:00:00"],
)  # fmt: skip
def test_plain_stamps_decline_the_rest(cell) -> None:
    assert canonical.plain_stamps_ns(pa.array(["2023-01-01 00:00:00", cell])) is None

"""Azure timestamps parsed by Arrow (no pandas) give pandas' nanoseconds, or go to pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from infsim.workload.formats_csv import _plain_stamps_ns


def _pandas_ns(texts: list[str]) -> np.ndarray | None:
    parsed = pd.to_datetime(pd.Series(texts, dtype=object), format="ISO8601", errors="coerce")
    if parsed.isna().any():
        return None
    return parsed.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").astype(np.int64)


@st.composite
def stamps(draw) -> str:
    """Near the Azure form, invalid dates and times included (Feb 30, 24:00, :60)."""
    year = draw(st.sampled_from([1899, 1900, 1970, 2023, 2024, 2199, 2200, 2261, 2262]))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    hour, minute, second = (
        draw(st.integers(0, 24)),
        draw(st.integers(0, 60)),
        draw(st.integers(0, 60)),
    )
    sep = draw(st.sampled_from([" ", "T"]))
    digits = draw(st.integers(0, 10))
    fraction = (
        "."
        + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=digits, max_size=digits)))
        if digits
        else ""
    )
    return f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}{fraction}"


@settings(max_examples=400, deadline=None)
@given(st.lists(stamps(), min_size=1, max_size=5))
def test_arrow_stamps_are_pandas_stamps(texts) -> None:
    got = _plain_stamps_ns(pa.chunked_array([pa.array(texts, pa.string())]))
    if got is None:
        return  # pandas parses or refuses these, as before
    expected = _pandas_ns(texts)
    assert expected is not None, texts
    assert got.tolist() == expected.tolist()


def test_the_azure_form_takes_the_arrow_path() -> None:
    texts = ["2023-11-16 18:15:46.6805900", "2023-11-16 18:15:50.9951690", "2024-02-29T00:00:00"]
    got = _plain_stamps_ns(pa.chunked_array([pa.array(texts[:2]), pa.array(texts[2:])]))
    assert got is not None
    assert got.tolist() == _pandas_ns(texts).tolist()
    for other in (
        ["2023-11-16 18:15:46+00:00"],
        ["2023-02-30 00:00:00"],
        [" 2023-11-16 18:15:46"],
        ["2023-11-16 18:15"],
    ):
        assert _plain_stamps_ns(pa.chunked_array([pa.array(other)])) is None

"""A configuration proposed twice (optimize) gives plain cells, not {key: value} (issue 16)."""

from __future__ import annotations

import pandas as pd

from infsim.sweep.results import results_table


class _Store:
    def __init__(self, points, rows):
        self._points, self._rows = points, rows
        self.asked = None

    def manifest(self):
        return {"points": self._points}

    def rows(self, keys=None):
        """One row per key asked for, repeats included (a store that does not dedupe)."""
        self.asked = keys
        frame = pd.DataFrame(self._rows).set_index("key", drop=False)
        return frame.loc[keys].reset_index(drop=True) if keys is not None else frame


def test_a_repeated_configuration_gives_one_plain_row_per_point():
    points = [{"index": 0, "key": "a", "overrides": {"deployment.replicas": 1}},
              {"index": 1, "key": "b", "overrides": {"deployment.replicas": 2}},
              {"index": 2, "key": "a", "overrides": {"deployment.replicas": 1}}]  # fmt: skip
    store = _Store(points, [{"key": "a", "status": "ok", "cost.usd_per_hour": 2.5},
                            {"key": "b", "status": "ok", "cost.usd_per_hour": 5.0}])  # fmt: skip
    table = results_table(store)
    assert table["point"].tolist() == [0, 1, 2]
    assert table["cost.usd_per_hour"].tolist() == [2.5, 5.0, 2.5]
    assert table["status"].tolist() == ["ok", "ok", "ok"]

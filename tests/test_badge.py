"""CONTRACT section 4's badge table, from rows the engine makes."""

from __future__ import annotations

import pytest

from auditor.badge import badge
from tests.engine_helpers import act, audit, delete, off, on

T = "2025-10-02T09:30:00Z"


@pytest.mark.parametrize("events, as_of, expected", [
    ([on("2025-09-01"), act(T)], "2025-11-01",
     {"text": "T", "color": "#B45309",
      "title": "May be used for training since 2025-10-02; kept until 2030-10-02"}),
    ([on("2025-09-01"), act(T), delete("2025-11-01")], "2025-11-05",
     {"text": "W", "color": "#7C3AED",
      "title": "Was usable for training from 2025-10-02 to 2025-11-01; kept until 2025-12-01"}),
    ([off("2025-09-01"), act(T)], "2025-11-01",
     {"text": "-", "color": "#15803D", "title": "Not used for training; kept until you delete it"}),
    ([act(T)], "2025-11-01",
     {"text": "?", "color": "#6B7280",
      "title": "Training setting not recorded; open the provider's privacy settings once"}),
])
def test_badge_table(events, as_of, expected):
    assert badge(audit(events, as_of)) == expected


def test_badge_refuses_an_unknown_training_value():
    with pytest.raises(ValueError, match="training"):
        badge({"training": "maybe"})

"""The badge of a chat's status (CONTRACT section 4): `{text, color, title}` from a report row.

Dates are written YYYY-MM-DD (UTC); the extension may render them in the user's zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_KEPT_FOREVER = "you delete it"


def _date(value: str | None) -> str | None:
    # Report times are RFC 3339 UTC with a Z, so the date is the first ten characters.
    return None if value is None else value[:10]


def badge(row: Mapping[str, Any]) -> dict[str, str]:
    """CONTRACT section 4's badge table, exactly."""
    training = row["training"]
    kept = _date(row.get("expires_at")) or _KEPT_FOREVER
    windows = row.get("training_windows") or []
    if training == "yes":
        since = _date(windows[0]["from"]) if windows else "?"
        return {"text": "T", "color": "#B45309",
                "title": f"May be used for training since {since}; kept until {kept}"}
    if training == "was":
        start = _date(windows[0]["from"]) if windows else "?"
        end = _date(windows[-1]["until"]) if windows else "?"
        return {"text": "W", "color": "#7C3AED",
                "title": f"Was usable for training from {start} to {end}; kept until {kept}"}
    if training == "no":
        return {"text": "-", "color": "#15803D",
                "title": f"Not used for training; kept until {kept}"}
    if training == "unknown":
        return {"text": "?", "color": "#6B7280",
                "title": "Training setting not recorded; open the provider's privacy settings "
                         "once"}
    raise ValueError(f"unknown training value {training!r}")

"""The iCalendar report: one event per dated chat, stable UIDs, text that survives escaping."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

import icalendar
import pytest

from auditor.calendar_report import event_uid, render_ics
from tests.report_samples import make_report, small_report


def events(ics: bytes) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(ics).walk("VEVENT"))


def one_chat_report(**chat: Any) -> dict[str, Any]:
    report = small_report()
    base = next(c for c in report["chats"] if c["expires_at"])
    report["chats"] = [{**copy.deepcopy(base), **chat}]
    return report


def test_one_event_per_chat_with_an_expiry_past_ones_included() -> None:
    report = small_report()
    dated = [c for c in report["chats"] if c["expires_at"]]
    assert any(c["expired"] for c in dated) and any(not c["expired"] for c in dated)
    assert len(dated) < len(report["chats"])   # some have no date and get no event

    found = events(render_ics(report))

    assert len(found) == len(dated)
    assert {str(e["uid"]) for e in found} == {
        event_uid(c["provider"], c["account"], c["chat_id"]) for c in dated
    }
    for event, chat in zip(found, dated, strict=True):
        assert event.decoded("dtstart") == datetime.fromisoformat(
            chat["expires_at"].replace("Z", "+00:00")).replace(microsecond=0)


def test_calendar_header_is_what_readers_need() -> None:
    cal = icalendar.Calendar.from_ical(render_ics(small_report()))
    assert str(cal["version"]) == "2.0"
    assert str(cal["prodid"]).startswith("-//Consent Ledger//")
    raw = render_ics(small_report())
    assert raw.startswith(b"BEGIN:VCALENDAR\r\n") and raw.endswith(b"END:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))   # RFC 5545 folding


def test_uids_are_stable_across_reports_and_dtstamp_is_generated_at() -> None:
    first = events(render_ics(make_report(40, generated_at="2026-11-28T12:00:00Z")))
    second = events(render_ics(make_report(40, generated_at="2027-01-05T08:30:00Z")))

    assert [str(e["uid"]) for e in first] == [str(e["uid"]) for e in second]
    assert len({str(e["uid"]) for e in first}) == len(first)
    assert all(str(e["uid"]).endswith("@consent-ledger.local") for e in first)
    assert first[0].decoded("dtstamp") == datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert second[0].decoded("dtstamp") == datetime(2027, 1, 5, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(("a", "b"), [
    (("claude", "default", "x"), ("chatgpt", "default", "x")),
    (("claude", "default", "x"), ("claude", "other", "x")),
    (("claude", "ab", "c"), ("claude", "a", "bc")),   # no ambiguity at the joins
])
def test_uid_depends_on_the_whole_chat_key(a: tuple[str, str, str],
                                           b: tuple[str, str, str]) -> None:
    assert event_uid(*a) != event_uid(*b)
    assert event_uid(*a) == event_uid(*a)


@pytest.mark.parametrize("title", [
    "Plain title",
    "commas, semicolons; colons: and a backslash \\ too",
    '<img src=x onerror=alert(1)> & "quotes"',
    "Résumé — 東京 ✈️",
])
def test_text_survives_ical_escaping(title: str) -> None:
    report = one_chat_report(provider="claude", kind="chat", title=title,
                             reasons=["A8: one; two, three \\ four", "second reason"])

    raw = render_ics(report)
    (event,) = events(raw)

    assert str(event["summary"]) == f"Claude chat '{title}': the provider's copies must be gone"
    description = str(event["description"])
    assert f"Chat: {title}" in description
    assert "- A8: one; two, three \\ four\n- second reason" in description
    if "," in title:
        assert b"\\," in raw and b"\\;" in raw


def test_summary_is_one_line_and_names_the_provider() -> None:
    (event,) = events(render_ics(one_chat_report(provider="gemini", kind="chat",
                                                 title="first\nsecond\r\nthird")))
    assert str(event["summary"]) == (
        "Gemini chat 'first second third': the provider's copies must be gone")

    (event,) = events(render_ics(one_chat_report(provider="claude", kind="code", title="x")))
    assert str(event["summary"]).startswith("Claude code session 'x'")


@pytest.mark.parametrize("title", [None, "", "   "])
def test_untitled_chats_say_so(title: str | None) -> None:
    (event,) = events(render_ics(one_chat_report(provider="chatgpt", kind="chat", title=title,
                                                 chat_id="abcdef012345-6789")))
    assert str(event["summary"]) == (
        "ChatGPT chat (untitled, id abcdef012345): the provider's copies must be gone")


def test_description_gives_verdict_basis_and_reasons() -> None:
    (event,) = events(render_ics(one_chat_report(
        training="yes", expiry_basis="A8: last activity in a window + 5 years",
        expires_at="2030-10-02T09:30:00Z", expired=False,
        reasons=["A2: you wrote while the setting was on."])))
    text = str(event["description"])
    assert "Training: May be used for training (T)" in text
    assert "Copies must be gone by: 2030-10-02 09:30 UTC" in text
    assert "Rule: A8: last activity in a window + 5 years" in text
    assert "- A2: you wrote while the setting was on." in text


def test_all_day_events_are_dates() -> None:
    (event,) = events(render_ics(one_chat_report(expires_at="2030-10-02T23:30:00Z"),
                                 all_day=True))
    assert event.decoded("dtstart") == date(2030, 10, 2)
    assert event.decoded("dtend") == date(2030, 10, 3)


def test_a_report_without_dated_chats_is_an_empty_valid_calendar() -> None:
    report = small_report()
    report["chats"] = [c for c in report["chats"] if not c["expires_at"]]
    cal = icalendar.Calendar.from_ical(render_ics(report))
    assert list(cal.walk("VEVENT")) == []
    assert str(cal["version"]) == "2.0"

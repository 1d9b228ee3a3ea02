"""The policy data (auditor/policies/*.toml) loads, is checked, and matches events.PLANS."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.engine import Engine
from auditor.events import PLANS
from auditor.policy import (
    POLICY_DIR,
    SOURCE_TAGS,
    Duration,
    PolicyBook,
    PolicyError,
    default_book,
)
from auditor.times import add_duration


def _docs() -> list[tuple[str, dict]]:
    return [(p.name, tomllib.loads(p.read_text())) for p in sorted(POLICY_DIR.glob("*.toml"))]


def test_every_plan_in_events_is_classified_and_vice_versa():
    book = default_book()
    assert set(book.providers) == set(PLANS)
    for provider, plans in PLANS.items():
        assert set(book.policy(provider).plan_class) == set(plans), provider


@pytest.mark.parametrize("provider, plan, expected", [
    ("claude", "pro", "consumer"), ("claude", "api", "commercial"), ("claude", "gov", "commercial"),
    ("chatgpt", "plus", "consumer"), ("chatgpt", "team", "commercial"),
    ("chatgpt", "business", "commercial"), ("gemini", "ultra", "consumer"),
    ("gemini", "workspace", "commercial"),
])
def test_R8_plan_classes(provider, plan, expected):
    assert default_book().plan_class(provider, plan) == expected


@pytest.mark.parametrize("provider, plan", [("claude", "plus"), ("gemini", "team"),
                                            ("chatgpt", "max"), ("chatgpt", "")])
def test_R8_other_plans_are_invalid(provider, plan):
    with pytest.raises(PolicyError, match="is not a"):
        default_book().plan_class(provider, plan)


def test_R8_team_is_an_alias_of_business():
    policy = default_book().policy("chatgpt")
    assert policy.canonical_plan("team") == "business"


def test_every_rule_of_the_rule_book_is_in_the_data_with_sources():
    book = default_book()
    expected = ({f"R{i}" for i in range(1, 10)} | {f"A{i}" for i in range(1, 13)}
                | {f"O{i}" for i in range(1, 8)} | {f"G{i}" for i in range(1, 7)})
    assert set(book.rules) == expected
    for rule in book.rules.values():
        assert rule.text and rule.sources, rule.id
        for source in rule.sources:
            assert source.tag in SOURCE_TAGS
            assert source.read == date(2026, 11, 28)


def test_dates_and_durations_live_in_the_data():
    book = default_book()
    claude = book.policy("claude")
    start = datetime(2025, 8, 28, tzinfo=UTC)
    assert claude.era_at(start).rule == "A2"
    assert claude.era_at(datetime(2025, 8, 27, 23, 59, tzinfo=UTC)).rule == "A1"
    feedback = claude.copies_of("feedback")
    assert {(c.duration.years, c.start, c.end) for c in feedback} == {
        (10, None, start), (5, start, None)}
    (hold,) = book.policy("chatgpt").holds
    assert (hold.start, hold.end) == (datetime(2025, 5, 13, tzinfo=UTC),
                                      datetime(2025, 9, 27, tzinfo=UTC))
    (g3,) = book.policy("gemini").copies_of("training")
    assert (g3.duration.years, g3.also.months) == (3, 18)


def _with(name: str, change) -> list[tuple[str, dict]]:
    docs = _docs()
    for file_name, doc in docs:
        if file_name == name:
            change(doc)
    return docs


@pytest.mark.parametrize("file_name, change, message", [
    ("anthropic.toml", lambda d: d["plans"].update(consumer=["free", "pro", "free"]),
     "listed twice"),
    ("anthropic.toml", lambda d: d["rule"][0]["sources"][0].update(tag="B"), "tag must be"),
    ("anthropic.toml", lambda d: d["rule"][0].update(sources=[]), "at least one source"),
    ("anthropic.toml", lambda d: d["copy"][0].update(days=-1), "whole number"),
    ("anthropic.toml", lambda d: d["copy"][0].update(basis="30 days"), "must start with"),
    ("anthropic.toml", lambda d: d["copy"][0].update(of="forever"), "'of' must be"),
    ("anthropic.toml", lambda d: d["training"][1].update(missing="maybe"), "'missing' must"),
    ("anthropic.toml", lambda d: d.update(colour="red"), "unknown key"),
    ("anthropic.toml", lambda d: d["incognito"].update(rule="A99"), "A99 is referenced"),
    ("openai.toml", lambda d: d["hold"][0].update(plans=["gold"]), "not a chatgpt plan"),
    ("openai.toml", lambda d: d["plans"].update(aliases={"team": "gold"}), "unknown plan"),
    ("google.toml", lambda d: d["rule"][0].update(id="A1"), "already defined"),
])
def test_bad_policy_data_is_refused_with_a_clear_error(file_name, change, message):
    with pytest.raises(PolicyError, match=message):
        PolicyBook.from_documents(_with(file_name, change))


def test_a_new_provider_is_a_data_change(tmp_path):
    for path in POLICY_DIR.glob("*.toml"):
        (tmp_path / path.name).write_text(path.read_text())
    text = (POLICY_DIR / "openai.toml").read_text().replace('provider = "chatgpt"',
                                                            'provider = "copilot"')
    for i in range(1, 8):
        text = text.replace(f'"O{i}"', f'"C{i}"').replace(f"O{i}: ", f"C{i}: ")
    (tmp_path / "copilot.toml").write_text(text)
    book = PolicyBook.load(tmp_path)
    assert book.plan_class("copilot", "plus") == "consumer"
    engine = Engine(book)
    engine.apply({"v": 1, "id": "copilot-1", "type": "chat.activity",
                  "at": "2025-10-02T09:30:00Z", "provider": "copilot", "account": "default",
                  "chat_id": "x", "kind": "chat", "incognito": False})
    row = engine.chat_row(("copilot", "default", "x"), datetime(2026, 1, 1, tzinfo=UTC))
    assert row["training"] == "yes" and "C1" in row["policies"]


@settings(max_examples=300, deadline=None)
@given(moment=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31),
                           timezones=st.just(UTC)),
       years=st.integers(0, 12), months=st.sampled_from([0, 0, 3, 18, 36]),
       days=st.sampled_from([0, 30]), hours=st.sampled_from([0, 72]))
def test_R1_duration_after_is_calendar_arithmetic(moment, years, months, days, hours):
    if not (years or months or days or hours):
        return
    duration = Duration(years=years, months=months, days=days, hours=hours)
    assert duration.after(moment) == add_duration(moment, years=years, months=months,
                                                  days=days, hours=hours)

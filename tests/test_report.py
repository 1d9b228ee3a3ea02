"""The audit report: contract shape, determinism, signature, CSV, and `verify REPORT`."""

from __future__ import annotations

import base64
import copy
import csv
import io
import json
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.audit import audit_ledger, audit_to_file
from auditor.demo import demo_events
from auditor.keys import LedgerKeys
from auditor.ledger import Ledger
from auditor.report import (
    CSV_COLUMNS,
    canonical,
    load_report,
    report_csv,
    report_json,
    sign_report,
    verify_report,
)

ROOT = Path(__file__).parents[1]
SCHEMA = json.loads((ROOT / "auditor/schemas/report.schema.json").read_text())
AS_OF = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.fixture
def demo_ledger(data_dir: Path, config_dir: Path) -> Ledger:
    with Ledger.open(data_dir, config_dir) as ledger:
        ledger.append(demo_events())
    reader = Ledger.open(data_dir, config_dir, writable=False)
    return reader


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_the_report_follows_the_contract(demo_ledger: Ledger) -> None:
    report = audit_ledger(demo_ledger, as_of=AS_OF)
    jsonschema.validate(report, SCHEMA)
    assert report["ledger"]["events"] == demo_ledger.seq
    assert report["ledger"]["checkpoint"]["seq"] == demo_ledger.seq
    assert report["summary"]["chats"] == len(report["chats"])
    verdicts = {c["training"] for c in report["chats"]}
    assert verdicts == {"yes", "was", "no", "unknown"}     # the demo covers every verdict
    keys = [(c["provider"], c["account"], c["first_activity"] is None,
             c["first_activity"] or "", c["chat_id"]) for c in report["chats"]]
    assert keys == sorted(keys)


def test_two_audits_differ_only_in_generated_at_and_signature(demo_ledger: Ledger) -> None:
    a = audit_ledger(demo_ledger, as_of=AS_OF,
                     generated_at=datetime(2026, 11, 28, 10, tzinfo=UTC))
    b = audit_ledger(demo_ledger, as_of=AS_OF,
                     generated_at=datetime(2026, 11, 28, 11, tzinfo=UTC))
    for r in (a, b):
        r.pop("generated_at")
        r.pop("signature")
    assert canonical(a) == canonical(b)


def test_the_signature_checks_with_the_contract_rule_alone(demo_ledger: Ledger) -> None:
    report = audit_ledger(demo_ledger, as_of=AS_OF)
    body = {k: v for k, v in report.items() if k != "signature"}
    message = json.dumps(body, sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False).encode()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(report["signature"]["public_key"]))
    key.verify(base64.b64decode(report["signature"]["value"]), message)   # raises if bad
    assert verify_report(report, ledger_public_key=demo_ledger.keys.public_key_b64).ok


@pytest.mark.parametrize("path", [
    ("summary", "training_yes"), ("as_of",), ("chats", 0, "training"),
    ("chats", 1, "expires_at"), ("ledger", "head"), ("chats", 2, "reasons", 0),
])
def test_a_forged_value_is_refused(demo_ledger: Ledger, path: tuple[Any, ...]) -> None:
    report = audit_ledger(demo_ledger, as_of=AS_OF)
    forged = copy.deepcopy(report)
    target = forged
    for step in path[:-1]:
        target = target[step]
    old = target[path[-1]]
    target[path[-1]] = (old + 1) if isinstance(old, int) else ("no" if old == "yes" else "yes")
    verdict = verify_report(forged, ledger_public_key=demo_ledger.keys.public_key_b64)
    assert not verdict.ok
    assert "changed after it was signed" in verdict.describe()


def test_a_report_resigned_with_another_key_is_refused(demo_ledger: Ledger) -> None:
    report = audit_ledger(demo_ledger, as_of=AS_OF)
    report["summary"]["training_yes"] = 0
    other = LedgerKeys.generate("f" * 32)
    resigned = sign_report(report, other)
    verdict = verify_report(resigned, ledger_public_key=demo_ledger.keys.public_key_b64)
    assert not verdict.ok
    assert "not this ledger's" in verdict.describe()
    # Even with no ledger at hand, its checkpoint was signed by the ledger's key, not this one.
    assert not verify_report(resigned).ok


def test_a_signature_from_a_random_key_is_refused(demo_ledger: Ledger) -> None:
    report = audit_ledger(demo_ledger, as_of=AS_OF)
    stranger = Ed25519PrivateKey.generate()
    report["signature"]["value"] = base64.b64encode(stranger.sign(b"x")).decode()
    assert not verify_report(report).ok


def test_csv_has_the_contract_columns(demo_ledger: Ledger) -> None:
    report = audit_ledger(demo_ledger, as_of=AS_OF)
    text = report_csv(report)
    assert not text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert len(rows) == len(report["chats"])
    by_id = {r["chat_id"]: r for r in rows}
    for chat in report["chats"]:
        row = by_id[chat["chat_id"]]
        assert row["training"] == chat["training"]
        assert row["reasons"] == " | ".join(chat["reasons"])
        windows = chat["training_windows"]
        assert row["training_from"] == (windows[0]["from"] if windows else "")
        assert row["training_until"] == ((windows[-1]["until"] or "") if windows else "")


def test_audit_and_verify_from_the_command_line(demo_ledger: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    r = cli("audit", "--as-of", "2026-11-28", "-o", str(out))
    assert r.returncode == 0, r.stderr
    report = load_report(out.read_bytes())
    assert report["as_of"] == "2026-11-28T00:00:00Z"
    ok = cli("verify", str(out))
    assert ok.returncode == 0 and "signed by this ledger's key" in ok.stdout
    report["chats"][0]["training"] = "no" if report["chats"][0]["training"] != "no" else "yes"
    out.write_text(json.dumps(report))
    bad = cli("verify", str(out))
    assert bad.returncode == 1 and "REFUSED" in bad.stdout


def test_the_streamed_report_is_the_built_one_byte_for_byte(demo_ledger: Ledger,
                                                           tmp_path: Path) -> None:
    when = datetime(2026, 11, 28, 10, tzinfo=UTC)
    built = audit_ledger(demo_ledger, as_of=AS_OF, generated_at=when)
    with open(tmp_path / "r.json", "w+b") as fh:
        fh.write(b"leading bytes the writer must leave alone")
        start = fh.tell()
        audit_to_file(demo_ledger, fh, as_of=AS_OF, generated_at=when)
        fh.seek(start)
        streamed = fh.read()
    assert streamed == report_json(built)
    assert json.loads(streamed) == built
    # One chat per line; without the line breaks the body is the canonical, signed form.
    lines = streamed.split(b"\n")   # head, the chats, the rest, the signature, ""
    assert [json.loads(line.rstrip(b",")) for line in lines[1:-3]] == built["chats"]
    body, _, tail = streamed.rpartition(b',\n"signature":')
    assert body.replace(b"\n", b"") + b"}" == canonical(
        {k: v for k, v in built.items() if k != "signature"})
    assert json.loads(b"{" + b'"signature":' + tail)["signature"] == built["signature"]
    assert verify_report(json.loads(streamed)).ok


def test_an_empty_report_streams_too(data_dir: Path, config_dir: Path, tmp_path: Path) -> None:
    Ledger.open(data_dir, config_dir).close()
    reader = Ledger.open(data_dir, config_dir, writable=False)
    with open(tmp_path / "r.json", "w+b") as fh:
        audit_to_file(reader, fh, as_of=AS_OF)
        fh.seek(0)
        report = json.loads(fh.read())
    assert report["chats"] == [] and report["summary"]["chats"] == 0
    jsonschema.validate(report, SCHEMA)
    assert verify_report(report).ok


def test_audit_writes_its_file_whole_and_private(demo_ledger: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "report.json"
    out.parent.mkdir()
    out.write_text("an older report")
    assert cli("audit", "--as-of", "2026-11-28", "-o", str(out)).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o600     # it holds chat titles
    assert [p.name for p in out.parent.iterdir()] == ["report.json"]  # no partial file
    assert verify_report(load_report(out.read_bytes())).ok
    missing = cli("audit", "-o", str(tmp_path / "no-such-folder" / "r.json"))
    assert missing.returncode == 2 and "cannot write" in missing.stderr


def test_a_failed_audit_leaves_the_older_report(demo_ledger: Ledger, data_dir: Path,
                                                tmp_path: Path) -> None:
    out = tmp_path / "reports" / "report.json"
    out.parent.mkdir()
    out.write_text("an older report")
    ledger_file = data_dir / "ledger.jsonl"
    lines = ledger_file.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"seq":4', b'"seq":9')   # a line edited
    ledger_file.write_bytes(b"\n".join(lines))
    r = cli("audit", "-o", str(out))
    assert r.returncode == 2 and "line 4" in r.stderr, r.stderr
    assert out.read_text() == "an older report"
    assert [p.name for p in out.parent.iterdir()] == ["report.json"]


def test_the_streamed_csv_is_the_built_one_byte_for_byte(demo_ledger: Ledger,
                                                        tmp_path: Path) -> None:
    """`audit --format csv` writes its rows as the engine works them out (a large audit
    never holds them all): the same bytes as the CSV of the built report, to a file or to
    standard output, and only its owner may read the file."""
    built = report_csv(audit_ledger(demo_ledger, as_of=AS_OF)).encode()
    assert built.count(b"\r\n") == len(audit_ledger(demo_ledger, as_of=AS_OF)["chats"]) + 1
    out = tmp_path / "report.csv"
    r = cli("audit", "--format", "csv", "--as-of", "2026-11-28", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == built
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    piped = subprocess.run([sys.executable, "-m", "server.cli", "audit", "--format", "csv",
                            "--as-of", "2026-11-28"], capture_output=True, cwd=ROOT,
                           timeout=60)
    assert piped.returncode == 0 and piped.stdout == built


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_audit_to_stdout(demo_ledger: Ledger, fmt: str) -> None:
    r = cli("audit", "--format", fmt)
    assert r.returncode == 0 and r.stdout


def test_audit_bad_as_of_is_exit_2(demo_ledger: Ledger) -> None:
    r = cli("audit", "--as-of", "2026-02-30")
    assert r.returncode == 2 and "--as-of" in r.stderr


def test_verify_of_something_that_is_not_a_report(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text('{"hello": 1}')
    r = cli("verify", str(f))
    assert r.returncode == 2 and "not a Consent Ledger report" in r.stderr


def test_verify_an_html_report_and_catch_an_edited_page(demo_ledger: Ledger,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert cli("audit", "--format", "html", "-o", str(out)).returncode == 0
    ok = cli("verify", str(out))
    assert ok.returncode == 0, ok.stdout
    assert "signed by this ledger's key" in ok.stdout
    page = out.read_text()
    report = load_report(out.read_bytes())
    yes = next(c for c in report["chats"] if c["training"] == "yes")
    title = yes["title"]
    assert title in page
    out.write_text(page.replace(title, "Nothing to see here", 1))
    edited = cli("verify", str(out))
    assert edited.returncode == 1 and "visible page differs" in edited.stdout


_leaf = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
         | st.text(alphabet=st.characters(exclude_categories=("Cs",))))
_report_like = st.recursive(_leaf, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=6), kids,
    max_size=4), max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(body=st.dictionaries(st.text(max_size=6), _report_like, max_size=5))
def test_canonical_is_exactly_the_contract_rule(body: dict[str, Any]) -> None:
    rule = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical(body) == rule.encode("utf-8")

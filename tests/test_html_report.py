"""The HTML report: well formed, self-contained, escaped, carrying its signed JSON exactly;
and, in real headless Chromium, drawn (screenshots) without turning any title into markup."""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.html_report import (
    REPORT_SCRIPT_ID,
    EmbeddedReportError,
    embedded_json,
    extract_embedded_report,
    render_html,
    rendering_matches,
)
from tests.report_samples import (
    empty_report,
    large_report,
    make_report,
    small_report,
)

SCHEMA = json.loads(
    (Path(__file__).parent.parent / "auditor" / "schemas" / "report.schema.json").read_text())
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
SVG_LEAVES = {"rect", "line", "path", "circle", "polygon", "polyline"}
XSS = "<img src=x onerror=alert(1)>"


class Structure(HTMLParser):
    """Checks that every element closes in order, and collects tags and attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag not in VOID | SVG_LEAVES:
            self.errors.append(f"self-closed <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()


def parse(html: str) -> Structure:
    s = Structure()
    s.feed(html)
    s.close()
    return s


def nasty_report() -> dict[str, Any]:
    """Strings that could end, comment out or re-open the script element, or not be UTF-8."""
    report = small_report()
    titles = ["</script><script>alert(1)</script>", "<!--<script>", "</SCRIPT >", "<\\/x>",
              "lone \ud800 surrogate", "line\u2028separator\u2029", "emoji 🙂 and nul \x00",
              "&amp; &lt;not an entity&gt;", XSS]
    for chat, title in zip(report["chats"], titles, strict=False):
        chat["title"] = title
        chat["reasons"] = [*chat["reasons"], f"reason about {title}"]
    report["accounts"][0]["consent"].append(
        {"at": "2026-01-01T00:00:00Z", "value": True, "source": "</script>"})
    return report


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    return small_report()


@pytest.fixture(scope="module")
def small_html(small: dict[str, Any]) -> str:
    return render_html(small)


def test_samples_match_the_report_schema() -> None:
    for report in (small_report(), empty_report(), make_report(300, seed=3)):
        jsonschema.validate(report, SCHEMA)
    report = small_report()
    assert {c["training"] for c in report["chats"]} == {"yes", "was", "no", "unknown"}
    assert len({(a["provider"], a["account"]) for a in report["accounts"]}) >= 3


def test_is_well_formed_html(small_html: str) -> None:
    structure = parse(small_html)
    assert structure.errors == []
    assert structure.stack == []
    assert small_html.startswith("<!DOCTYPE html>")
    assert structure.tags.count("svg") >= 4   # one timeline per account, legend swatches


def test_is_self_contained_and_locked_down(small_html: str) -> None:
    structure = parse(small_html)
    assert {"link", "img", "iframe", "object", "embed", "form"}.isdisjoint(structure.tags)
    assert [s for s in structure.scripts if s.get("src")] == []
    assert [s.get("type") for s in structure.scripts] == ["application/json"]
    for tag, name, value in structure.attrs:
        assert not name.startswith("on"), (tag, name)
        if name in ("href", "src", "xlink:href", "action"):
            assert (value or "").startswith("#"), (tag, name, value)
    assert "http://" not in small_html and "https://" not in small_html
    assert "@import" not in small_html and "url(" not in small_html
    csp = [v for t, k, v in structure.attrs if t == "meta" and k == "content"
           and "default-src" in (v or "")]
    assert csp == ["default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                   "base-uri 'none'; form-action 'none'"]


def test_shows_summary_badges_checkpoint_and_how_to_verify(small: dict[str, Any],
                                                           small_html: str) -> None:
    for color in ("#B45309", "#7C3AED", "#15803D", "#6B7280"):
        assert color in small_html
    for word in ("May be used for training", "Was usable for training",
                 "Not used for training", "Not known"):
        assert word in small_html
    summary = small["summary"]
    assert f'<p class="num">{summary["training_yes"]}</p>' in small_html
    checkpoint = small["ledger"]["checkpoint"]
    assert checkpoint["head"] in small_html and checkpoint["signature"] in small_html
    assert f"<dd>{checkpoint['seq']}</dd>" in small_html
    assert "consent-ledger verify report.html" in small_html
    assert "@media print" in small_html


def test_embedded_json_round_trips_exactly(small: dict[str, Any], small_html: str) -> None:
    assert extract_embedded_report(small_html) == small
    # The embedded text is the canonical form of CONTRACT section 4, `</` escaped.
    canonical = json.dumps(small, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert embedded_json(small).replace("<\\/", "</").replace("<\\u0021", "<!") == canonical


def test_embedded_report_still_verifies(small_html: str) -> None:
    report = extract_embedded_report(small_html)
    body = {k: v for k, v in report.items() if k != "signature"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(report["signature"]["public_key"]))
    key.verify(base64.b64decode(report["signature"]["value"]), canonical.encode())


def test_nothing_in_the_data_can_close_or_reopen_the_script() -> None:
    report = nasty_report()
    html = render_html(report)

    assert extract_embedded_report(html) == report
    html.encode("utf-8")   # no lone surrogate left anywhere
    assert "\x00" not in html   # nor a NUL, a parse error in HTML
    structure = parse(html)
    assert structure.errors == []
    assert len(structure.scripts) == 1
    body = html.split(f'id="{REPORT_SCRIPT_ID}">', 1)[1].rsplit("</script>", 1)[0]
    assert "</" not in body and "<!" not in body
    assert html.count("</script>") == 1


def test_markup_in_titles_is_shown_as_text(small_html: str) -> None:
    assert "&lt;img src=x onerror=alert(1)&gt;" in small_html
    assert "<img" not in small_html.split('<script type="application/json"')[0]
    assert "&lt;/script&gt;&lt;script&gt;alert(&#34;boom&#34;)&lt;/script&gt;" in small_html
    assert "<b>episodes</b>" not in small_html
    assert "img" not in parse(small_html).tags


def test_rendering_is_deterministic_and_checkable(small: dict[str, Any],
                                                  small_html: str) -> None:
    assert render_html(copy.deepcopy(small)) == small_html
    assert rendering_matches(small_html)
    forged = small_html.replace("May be used for training", "Never used for training", 1)
    assert extract_embedded_report(forged) == small   # the signature alone would not notice
    assert not rendering_matches(forged)


def test_dense_accounts_are_drawn_as_counts_per_month() -> None:
    report = make_report(800, seed=11)
    html = render_html(report, dense_above=60)
    assert html.count('class="dense-note"') == len(report["accounts"])
    assert "chats per month" in html
    sparse = render_html(report, dense_above=10_000)
    assert 'class="dense-note"' not in sparse
    assert sparse.count('class="lab') > len(report["chats"])   # one labelled row per chat


def test_threshold_is_per_account() -> None:
    report = make_report(120, seed=5)
    counts = {(a["provider"], a["account"]): 0 for a in report["accounts"]}
    for chat in report["chats"]:
        counts[chat["provider"], chat["account"]] += 1
    limit = sorted(counts.values())[-2]   # all but the largest account stay row by row
    html = render_html(report, dense_above=limit)
    assert html.count('class="dense-note"') == 1


def test_empty_report_renders() -> None:
    report = empty_report()
    html = render_html(report)
    assert parse(html).errors == []
    assert "No chats are recorded in this ledger yet." in html
    assert extract_embedded_report(html) == report


@pytest.mark.parametrize(("html", "match"), [
    ("<html><body>no report</body></html>", "no <script"),
    (f'<script type="application/json" id="{REPORT_SCRIPT_ID}">{{nope</script>', "not valid JSON"),
    (f'<script type="application/json" id="{REPORT_SCRIPT_ID}">[1]</script>', "not a JSON object"),
])
def test_extract_refuses_what_is_not_a_report(html: str, match: str) -> None:
    with pytest.raises(EmbeddedReportError, match=match):
        extract_embedded_report(html)


# --- real Chromium --------------------------------------------------------------------------

def chromium_binary() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"),
                      "/usr/lib/chromium/chromium", shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = chromium_binary()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium binary (apt-get install -y chromium, or set CHROMIUM=/path/to/it)")


def run_chromium(tmp_path: Path, page: Path, *args: str, timeout: float = 240) -> str:
    assert CHROMIUM is not None
    profile = tmp_path / f"profile-{page.stem}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def png_facts(path: Path) -> tuple[int, int, int]:
    """Width, height, and how many distinct byte values its pixel data holds (stdlib only)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, bytearray()
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    pixels = zlib.decompress(bytes(idat))
    return width, height, len(set(pixels))


def screenshot(tmp_path: Path, report: dict[str, Any], name: str) -> Path:
    page = tmp_path / f"{name}.html"
    page.write_text(render_html(report), encoding="utf-8")
    png = tmp_path / f"{name}.png"
    run_chromium(tmp_path, page, f"--screenshot={png}", "--window-size=1280,2000",
                 "--hide-scrollbars")
    keep = os.environ.get("CONSENT_LEDGER_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)
    return png


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize(("name", "make"), [("small", small_report), ("large", large_report)])
def test_chromium_draws_the_report(tmp_path: Path, name: str, make: Any) -> None:
    png = screenshot(tmp_path, make(), f"report-{name}")
    assert png.stat().st_size > 60_000
    width, height, distinct = png_facts(png)
    assert (width, height) == (1280, 2000)
    assert distinct > 64   # not a blank or single-colour page


@pytest.mark.browser
@needs_chromium
def test_chromium_makes_no_element_from_a_title(tmp_path: Path) -> None:
    report = nasty_report()
    page = tmp_path / "nasty.html"
    page.write_text(render_html(report), encoding="utf-8")

    dom = run_chromium(tmp_path, page, "--dump-dom")

    structure = parse(dom)
    assert "img" not in structure.tags
    assert [s.get("type") for s in structure.scripts] == ["application/json"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    # What the browser parsed is still the whole report.
    assert extract_embedded_report(dom) == extract_embedded_report(page.read_text("utf-8"))

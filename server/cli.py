"""The `consent-ledger` command line (CONTRACT.md section 3).

Thin: it parses arguments and calls `auditor`; Flask is imported only by `serve`, so the
other commands start fast. Exit codes: 0 ok, 1 `verify` found a problem, 2 bad usage or
bad input.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from auditor import paths
from auditor.events import EventError, validate_event
from auditor.keys import PASSPHRASE_ENV, KeysError
from auditor.ledger import Ledger, LedgerError

DEFAULT_PORT = 8765  # also server.app.DEFAULT_PORT; not imported, to keep Flask out
MAX_LINE = 1 << 20   # a JSON line longer than 1 MiB is not an event

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or bad input: exit 2 with the message."""


# --- helpers ----------------------------------------------------------------------------------

def _dirs(args: argparse.Namespace) -> tuple[Path, Path]:
    return paths.data_dir(args.data_dir), paths.config_dir(args.config_dir)


def _passphrase() -> str | None:
    return os.environ.get(PASSPHRASE_ENV) or None


def open_ledger(args: argparse.Namespace, *, writable: bool = True,
                create: bool = True) -> Ledger:
    data, config = _dirs(args)
    return Ledger.open(data, config, writable=writable, create=create,
                       passphrase=_passphrase())


def read_jsonl(stream: BinaryIO, name: str) -> Iterator[dict[str, Any]]:
    """Parse and validate a JSON-lines stream lazily, naming the line of any problem."""
    index = 0
    for line_no, raw in enumerate(stream, start=1):
        if len(raw) > MAX_LINE:
            raise EventError(f"longer than {MAX_LINE} bytes", index=index, line=line_no)
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise EventError(f"{name} is not JSON lines here: {exc}", index=index,
                             line=line_no) from None
        yield validate_event(obj, index=index, line=line_no)
        index += 1


# --- commands ---------------------------------------------------------------------------------

def append_batch(args: argparse.Namespace, events: Iterable[dict[str, Any]]):  # type: ignore[no-untyped-def]
    """Store one all-or-nothing batch: through the running server that holds this ledger
    (one writer), or straight into the ledger when none runs."""
    from server.client import ServerUnavailable, find_server
    data, config = _dirs(args)
    server = find_server(data, config)
    if server is not None:
        batch = list(events)
        try:
            status, body = server.call("POST", "/api/v1/events", {"events": batch})
        except ServerUnavailable:
            server = None
        else:
            if status == 400:
                raise EventError(body.get("error", "refused"), field=body.get("field"),
                                 index=body.get("index"))
            if status != 200:
                raise UsageError(f"the server refused the batch ({status}): "
                                 f"{body.get('error') if isinstance(body, dict) else body}")
            return body["stored"], body["duplicates"], body["head"], "the running server"
        events = batch
    with open_ledger(args) as ledger:
        result = ledger.append(events, validated=True)
    return result.stored, result.duplicates, result.head, "the ledger"


def cmd_ingest(args: argparse.Namespace) -> int:
    """Append the events of a JSON-lines file as one all-or-nothing batch."""
    source = args.file
    if source == "-":
        stream: BinaryIO = sys.stdin.buffer
        name = "standard input"
    else:
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed in finally
        except OSError as exc:
            raise UsageError(f"cannot read {source}: {exc.strerror}") from None
        name = source
    try:
        stored, duplicates, head, _via = append_batch(args, read_jsonl(stream, name))
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    print(f"stored {stored} events, {duplicates} duplicates; ledger head {head}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    """Read a provider's own data export (or Claude Code's transcripts) into the ledger."""
    from auditor.importers import (
        ImportFormatError,
        ImportOptionError,
        format_summary,
        read_export,
    )
    from auditor.keys import load_keys
    from auditor.ledger import read_head
    path = Path(args.path).expanduser()
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    data, config = _dirs(args)
    head = read_head(data)
    if head is None:   # a first import makes the ledger, as ingest does
        open_ledger(args).close()
        head = read_head(data)
    assert head is not None
    salt = load_keys(config, str(head["ledger_id"]), passphrase=_passphrase()).account_salt
    try:
        result = read_export(path, salt=salt, account=args.account, plan=args.plan,
                             progress=sys.stderr.isatty())
        stored, duplicates, head_hash, via = append_batch(args, result.events)
    except (ImportFormatError, ImportOptionError) as exc:
        raise UsageError(str(exc)) from None
    print(format_summary(result.summary), file=sys.stderr)
    print(f"stored {stored} events, {duplicates} already in the ledger (via {via}); "
          f"ledger head {head_hash}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the local server on loopback until Ctrl-C or SIGTERM."""
    from server.serve import ServeError, serve
    data, config = _dirs(args)
    try:
        serve(data, config, port=args.port, host=args.host, passphrase=_passphrase(),
              max_body=args.max_body)
    except ServeError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot listen on port {args.port}: {exc.strerror}") from None
    return EXIT_OK


def _ask_server(args: argparse.Namespace, method: str, path: str) -> Any:
    from server.client import ServerUnavailable, require_server
    data, config = _dirs(args)
    try:
        status, body = require_server(data, config).call(method, path)
    except ServerUnavailable as exc:
        raise UsageError(str(exc)) from None
    if status != 200:
        raise UsageError(f"the server answered {status}: {body.get('error')}")
    return body


def cmd_pair(args: argparse.Namespace) -> int:
    """Print a fresh one-time pairing code from the running server."""
    body = _ask_server(args, "POST", "/api/v1/pairing-codes")
    print(f"Pairing code: {body['code']}")
    print("Paste it into the extension's options page within 10 minutes.")
    return EXIT_OK


def cmd_login(args: argparse.Namespace) -> int:
    """Print a fresh one-time dashboard login URL from the running server."""
    print(_ask_server(args, "POST", "/api/v1/login-links")["url"])
    return EXIT_OK


def cmd_tokens(args: argparse.Namespace) -> int:
    """List the paired clients, or revoke one."""
    if args.revoke:
        body = _ask_server(args, "DELETE", f"/api/v1/tokens/{args.revoke}")
        print(f"revoked {body['revoked']}")
        return EXIT_OK
    tokens = _ask_server(args, "GET", "/api/v1/tokens")["tokens"]
    if not tokens:
        print("no paired clients")
    for t in tokens:
        print(f"{t['id']}  {t['origin'] or '(command line)'}  paired {t['paired_at']}  "
              f"last used {t['last_used'] or 'never'}")
    return EXIT_OK


def cmd_accounts(args: argparse.Namespace) -> int:
    """List the account labels the ledger knows, per provider."""
    from server.client import find_server
    data, config = _dirs(args)
    if find_server(data, config) is not None:
        accounts = _ask_server(args, "GET", "/api/v1/accounts")["accounts"]
    else:
        from auditor.audit import replay
        accounts = replay(open_ledger(args, writable=False, create=False)).account_labels()
    if not accounts:
        print("no accounts yet")
    for a in accounts:
        print(f"{a['provider']:<8} {a['account']:<32}  {a['events']:>7} events  "
              f"first {a['first_event']}  last {a['last_event']}")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    """Write the signed audit report as of now or of --as-of."""
    from auditor.audit import audit_csv_to_file, audit_ledger, audit_to_file
    from auditor.report import render
    from auditor.times import TimeFormatError, parse_user_time, utcnow
    try:
        as_of = parse_user_time(args.as_of) if args.as_of else utcnow()
    except TimeFormatError as exc:
        raise UsageError(f"--as-of: {exc}") from None
    ledger = open_ledger(args, writable=False, create=False)
    for notice in ledger.notices:
        print(f"consent-ledger: {notice}", file=sys.stderr)
    if args.format == "json":  # streamed: a large audit holds one row at a time
        spool = (str(Path(args.output).parent) if args.output and args.output != "-"
                 else None)   # the report's own folder: its text stays where it goes
        _write_output(args.output, lambda fh: audit_to_file(ledger, fh, as_of=as_of,
                                                            spool_dir=spool))
        return EXIT_OK
    if args.format == "csv":   # streamed too: one row at a time
        _write_output(args.output, lambda fh: audit_csv_to_file(ledger, fh, as_of=as_of))
        return EXIT_OK
    report = audit_ledger(ledger, as_of=as_of)
    data = render(report, args.format)
    del report   # a large audit: keep one copy in memory while writing, not two
    _write_output(args.output, lambda fh: fh.write(data))
    return EXIT_OK


def _write_output(output: str | None, fill: Callable[[BinaryIO], object]) -> None:
    """Fill a file and put it at `output` whole (a temporary file beside it, renamed when
    complete, readable by its owner only: a report holds chat titles), or copy it to
    standard output."""
    if not output or output == "-":
        with tempfile.TemporaryFile() as fh:
            fill(fh)
            fh.seek(0)
            shutil.copyfileobj(fh, sys.stdout.buffer)
        sys.stdout.flush()
        return
    target = Path(output)
    try:
        fh = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed or removed below
            dir=target.parent, prefix=f".{target.name}.", suffix=".partial", delete=False)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    try:
        with fh:
            fill(fh)
        os.replace(fh.name, target)
    except BaseException as exc:
        Path(fh.name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
        raise


def cmd_verify(args: argparse.Namespace) -> int:
    """Check the ledger for tampering, or a report's signature."""
    if args.report:
        return _verify_report(args)
    from auditor.verify import verify_ledger
    data, config = _dirs(args)
    verdict = verify_ledger(data, config, passphrase=_passphrase())
    print(verdict.describe())
    return EXIT_OK if verdict.ok else EXIT_PROBLEM


def _verify_report(args: argparse.Namespace) -> int:
    from auditor.keys import load_keys
    from auditor.ledger import read_head
    from auditor.report import ReportError, load_report, verify_report
    try:
        raw = Path(args.report).read_bytes()
        report = load_report(raw)
    except OSError as exc:
        raise UsageError(f"cannot read {args.report}: {exc.strerror}") from None
    except (ReportError, UnicodeDecodeError) as exc:
        raise UsageError(f"{args.report}: {exc}") from None
    data, config = _dirs(args)
    public_key = None
    try:
        head = read_head(data)
    except LedgerError:
        head = None
    if head is not None:
        try:
            public_key = load_keys(config, str(head["ledger_id"]),
                                   passphrase=_passphrase()).public_key_b64
        except KeysError:
            public_key = str(head.get("public_key") or "") or None
    verdict = verify_report(report, ledger_public_key=public_key)
    if not raw.lstrip().startswith(b"{"):
        from auditor.html_report import rendering_matches
        if rendering_matches(raw.decode("utf-8")):
            verdict.notes.append("the visible page is exactly what its signed report renders to")
        else:
            verdict.ok = False
            verdict.problems.append(
                "the visible page differs from what its signed report renders to (the page "
                "was edited, or made by another version of Consent Ledger): trust only the "
                "signed data")
    print(verdict.describe())
    return EXIT_OK if verdict.ok else EXIT_PROBLEM


def cmd_service(args: argparse.Namespace) -> int:
    """Install, remove or show the service that starts the server at login."""
    from server import service
    try:
        kind = service.platform_kind()
    except service.ServiceError as exc:
        raise UsageError(str(exc)) from None
    home = Path.home()
    if args.action == "status":
        found = service.status(home=home, kind=kind)
        print(f"{found.detail} ({found.path})")
        from server.client import find_server
        data, config = _dirs(args)
        server = find_server(data, config)
        if server is not None:
            print(f"a server holds {data}: pid {server.pid}, http://127.0.0.1:{server.port}/")
        return EXIT_OK
    if args.action == "uninstall":
        outcome = service.uninstall(home=home, kind=kind)
    else:
        data, config = _dirs(args)
        command, workdir = service.serve_command(args.port)
        spec = service.ServiceSpec(command=command, data_dir=data.expanduser().absolute(),
                                   config_dir=config.expanduser().absolute(),
                                   working_dir=workdir)
        if _passphrase():
            print("note: the service cannot type your passphrase; it is never written into "
                  "the service's file, so a ledger with a passphrase will not open there",
                  file=sys.stderr)
        outcome = service.install(spec, home=home, kind=kind)
    for line in outcome.lines:
        print(line)
    return EXIT_OK if outcome.ok else EXIT_USAGE


def cmd_demo(args: argparse.Namespace) -> int:
    """Build a sample ledger in a folder of its own and summarise it."""
    from auditor.demo import build_demo
    if args.data_dir:
        data = Path(args.data_dir).expanduser()
        config = paths.config_dir(args.config_dir)
    else:
        root = Path(tempfile.mkdtemp(prefix="consent-ledger-demo-"))
        data, config = root / "data", root / "config"
        if args.config_dir:
            config = Path(args.config_dir).expanduser()
    default = paths.data_dir(None)
    if data.resolve() == default.resolve():
        raise UsageError(f"demo never writes the default ledger ({default}); "
                         "give it a --data-dir of its own")
    if (data / "head.json").exists():
        raise UsageError(f"{data} holds a ledger already; demo builds a new one in an empty "
                         "folder")
    print(build_demo(data, config))
    return EXIT_OK


# --- parser -----------------------------------------------------------------------------------

def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS,
                   help="the ledger's folder (default: $CONSENT_LEDGER_DIR, else the "
                        "platform's user data dir)")
    p.add_argument("--config-dir", metavar="DIR", default=argparse.SUPPRESS,
                   help="where keys live, apart from the data (default: "
                        "$CONSENT_LEDGER_CONFIG_DIR, else the platform's user config dir)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consent-ledger",
        description="A local, private, signed record of which of your AI chats may be used "
                    "for model training, and until when they are kept.",
        epilog="Exit codes: 0 ok, 1 verify found a problem, 2 bad usage or bad input.")
    _add_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, func: Any, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _add_common(p)
        p.set_defaults(func=func)
        return p

    p = command("serve", cmd_serve,
                "start the local server on 127.0.0.1; prints its address, a one-time "
                "dashboard login URL and a pairing code")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"the port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="a loopback address only: 127.0.0.1 (default), ::1 or localhost")
    p.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES",
                   help="the largest request body accepted (default 1 MiB)")

    command("pair", cmd_pair, "print a fresh one-time pairing code for the running server")
    command("login", cmd_login,
            "print a fresh one-time dashboard login URL for the running server")
    p = command("tokens", cmd_tokens,
                "list the paired clients (id, origin, when paired, last used); --revoke one")
    p.add_argument("--revoke", metavar="ID", help="revoke the paired client with this id")
    command("accounts", cmd_accounts,
            "list the account labels the ledger knows, per provider, with their first and "
            "last events")

    p = command("ingest", cmd_ingest,
                "append events from a JSON-lines file (or - for standard input) as one "
                "all-or-nothing batch")
    p.add_argument("file", metavar="FILE.jsonl", help="events, one JSON object per line")

    p = command("import", cmd_import,
                "read a provider's own data export (Claude, ChatGPT, Gemini Takeout; a zip "
                "or a folder) or Claude Code's transcripts (~/.claude) into the ledger")
    p.add_argument("path", metavar="PATH", help="the export: a zip, a folder or a file")
    p.add_argument("--account", metavar="ID",
                   help="the provider's raw account id (hashed into a label), or "
                        "label:<hex> for a label the ledger knows")
    p.add_argument("--plan", metavar="PLAN",
                   help="set this plan on every activity imported (e.g. api for Claude Code "
                        "run with an API key)")

    p = command("audit", cmd_audit,
                "the signed audit report: per chat, may it be trained on, since when, and "
                "until when it is kept (exits 0 whenever it wrote the report)")
    p.add_argument("--as-of", metavar="T",
                   help="judge as of this time (RFC 3339 or a plain date; default now)")
    p.add_argument("--format", choices=("json", "csv", "html", "ics"), default="json",
                   help="json (default), csv, html or ics")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")

    p = command("verify", cmd_verify,
                "check the ledger for tampering and name the first bad record")
    p.add_argument("report", metavar="REPORT", nargs="?",
                   help="a JSON or HTML report whose signature to check instead")

    p = command("service", cmd_service,
                "start the server at login: install, uninstall or show the systemd user "
                "unit (Linux) or launchd agent (macOS)")
    p.add_argument("action", choices=("install", "uninstall", "status"),
                   help="install (and start), uninstall (stop and remove), or status")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"the port the service's server listens on (default {DEFAULT_PORT})")

    command("demo", cmd_demo,
            "build a sample ledger in a folder of its own (a new temporary one unless "
            "--data-dir is given; never the default ledger) and print where and a summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(format="consent-ledger: %(message)s", level=logging.WARNING)
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("data_dir", "config_dir"):
        if not hasattr(args, name):
            setattr(args, name, None)
    try:
        return int(args.func(args))
    except EventError as exc:
        print(f"consent-ledger: bad input, nothing was stored: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, KeysError, LedgerError) as exc:
        print(f"consent-ledger: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

"""`consent-ledger service install|uninstall|status`: start the server at login.

Linux: a systemd user unit, `~/.config/systemd/user/consent-ledger.service`, started with
`systemctl --user enable --now`; its output goes to the journal
(`journalctl --user -u consent-ledger`). macOS: a launchd agent,
`~/Library/LaunchAgents/<LABEL>.plist`, loaded with `launchctl bootstrap gui/<uid>`, its
output in `~/Library/Logs/consent-ledger/`.

The files are made by pure functions (`systemd_unit`, `launchd_plist`) from a `ServiceSpec`;
the side effects (writing, `systemctl`, `launchctl`) sit in `install`, `uninstall` and
`status`, which take the home folder and a command runner so tests can run them anywhere.
Where no service manager answers (a container without a systemd user session), the file is
still written and the message says how to start it. No Flask here: the command line
imports this module without the web server.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

UNIT_NAME = "consent-ledger.service"
LABEL = "org.consent-ledger.serve"
DEFAULT_PORT = 8765

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class ServiceError(Exception):
    """Something the user has to fix; the message says what."""


@dataclass(frozen=True)
class ServiceSpec:
    """What the service runs: the command, its folders, and where its files go."""

    command: tuple[str, ...]            # e.g. ("/home/me/.local/bin/consent-ledger", "serve", ...)
    data_dir: Path
    config_dir: Path
    working_dir: Path | None = None     # for `python -m server.cli`: where `server` is found
    environment: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {"CONSENT_LEDGER_DIR": str(self.data_dir),
                "CONSENT_LEDGER_CONFIG_DIR": str(self.config_dir),
                "PYTHONUNBUFFERED": "1", **self.environment}


def serve_command(port: int = DEFAULT_PORT, *, argv0: str | None = None,
                  executable: str | None = None) -> tuple[tuple[str, ...], Path | None]:
    """The absolute command that starts `consent-ledger serve`, and a working folder if any.

    The running `consent-ledger` script when that is what was started, else
    `sys.executable -m server.cli` run from the folder that holds the `server` package.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    serve = ("serve", "--port", str(port))
    if Path(argv0).name == "consent-ledger":
        script = Path(argv0) if os.sep in argv0 else Path(shutil.which(argv0) or "")
        if script.name and script.is_file():
            return (str(script.absolute()), *serve), None
    root = Path(__file__).resolve().parent.parent
    return (str(Path(executable).absolute()), "-m", "server.cli", *serve), root


# --- systemd ------------------------------------------------------------------------------------

def unit_path(home: Path) -> Path:
    return home / ".config" / "systemd" / "user" / UNIT_NAME


def _systemd_word(text: str) -> str:
    """One word of a systemd command line or assignment: quoted, `%` and `$` escaped."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
               .replace("$", "$$"))
    if any(c in text for c in " \t\"'\\;") or text == "":
        return f'"{escaped}"'
    return escaped


def systemd_unit(spec: ServiceSpec) -> str:
    """The user unit: started at login, restarted on failure, output to the journal."""
    lines = [
        "# Written by `consent-ledger service install`; removed by `service uninstall`.",
        "[Unit]",
        "Description=Consent Ledger local server (127.0.0.1 only)",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(_systemd_word(w) for w in spec.command),
    ]
    if spec.working_dir is not None:
        lines.append("WorkingDirectory=" + _systemd_word(str(spec.working_dir)))
    lines += [f"Environment={_systemd_word(f'{k}={v}')}" for k, v in spec.env().items()]
    lines += [
        "Restart=on-failure",
        "RestartSec=5",
        "StandardOutput=journal",
        "StandardError=journal",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


# --- launchd ------------------------------------------------------------------------------------

def plist_path(home: Path, label: str = LABEL) -> Path:
    return home / "Library" / "LaunchAgents" / f"{label}.plist"


def log_dir(home: Path) -> Path:
    return home / "Library" / "Logs" / "consent-ledger"


def launchd_plist(spec: ServiceSpec, home: Path, label: str = LABEL) -> bytes:
    """The launch agent: loaded at login, restarted when it exits with an error."""
    logs = log_dir(home)
    agent: dict[str, object] = {
        "Label": label,
        "ProgramArguments": list(spec.command),
        "EnvironmentVariables": spec.env(),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 10,
        "StandardOutPath": str(logs / "serve.log"),
        "StandardErrorPath": str(logs / "serve.err.log"),
    }
    if spec.working_dir is not None:
        agent["WorkingDirectory"] = str(spec.working_dir)
    return plistlib.dumps(agent, sort_keys=True)


# --- doing it -----------------------------------------------------------------------------------

def run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run a service manager's command; a missing program is exit 127, not an exception."""
    try:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=60,
                              check=False)
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(args), 127, "", f"{args[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(args), 124, "", f"{args[0]}: timed out")


def platform_kind(platform: str | None = None) -> str:
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        return "launchd"
    if platform.startswith("linux"):
        return "systemd"
    raise ServiceError(f"`service` knows systemd (Linux) and launchd (macOS), not {platform}; "
                       "start `consent-ledger serve` from your system's own start-up list")


@dataclass
class Outcome:
    """What happened, as lines for the person at the terminal; `ok` picks the exit code."""

    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


def _why(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or result.stdout or "").strip().splitlines()
    return text[0] if text else f"exit {result.returncode}"


def install(spec: ServiceSpec, *, home: Path, kind: str, runner: Runner = run,
            uid: int | None = None) -> Outcome:
    out = Outcome()
    if kind == "systemd":
        path = unit_path(home)
        _write(path, systemd_unit(spec).encode())
        out.say(f"wrote {path}")
        reload = runner(["systemctl", "--user", "daemon-reload"])
        if reload.returncode != 0:
            out.say(f"no systemd user session is reachable here ({_why(reload)}), so the "
                    "service was not started.")
            out.say("In a normal login session, start it with: systemctl --user daemon-reload "
                    f"&& systemctl --user enable --now {UNIT_NAME}")
            out.say("Until then, run `consent-ledger serve` yourself.")
            return out
        enable = runner(["systemctl", "--user", "enable", "--now", UNIT_NAME])
        if enable.returncode != 0:
            out.ok = False
            out.say(f"systemctl could not start it: {_why(enable)}")
            out.say(f"see: journalctl --user -u {UNIT_NAME}")
            return out
        out.say(f"enabled and started {UNIT_NAME}: it starts at every login.")
        out.say(f"Its output (with the login link): journalctl --user -u {UNIT_NAME}; a fresh "
                "link: consent-ledger login")
        return out
    path = plist_path(home)
    log_dir(home).mkdir(parents=True, exist_ok=True)
    _write(path, launchd_plist(spec, home))
    out.say(f"wrote {path}")
    domain = f"gui/{os.getuid() if uid is None else uid}"
    runner(["launchctl", "bootout", f"{domain}/{LABEL}"])   # a previous version, if loaded
    boot = runner(["launchctl", "bootstrap", domain, str(path)])
    if boot.returncode != 0:
        out.say(f"launchctl could not load it ({_why(boot)}); it loads at your next login, "
                f"or now with: launchctl bootstrap {domain} {path}")
        return out
    out.say(f"loaded {LABEL}: it starts at every login. Logs: {log_dir(home)}; a fresh "
            "login link: consent-ledger login")
    return out


def uninstall(*, home: Path, kind: str, runner: Runner = run, uid: int | None = None
              ) -> Outcome:
    out = Outcome()
    if kind == "systemd":
        path = unit_path(home)
        if path.exists():
            stop = runner(["systemctl", "--user", "disable", "--now", UNIT_NAME])
            if stop.returncode != 0:
                out.say(f"systemctl could not stop it ({_why(stop)}); removing the file anyway")
            path.unlink()
            runner(["systemctl", "--user", "daemon-reload"])
            out.say(f"removed {path}")
        else:
            out.say(f"not installed (no {path})")
        return out
    path = plist_path(home)
    if path.exists():
        domain = f"gui/{os.getuid() if uid is None else uid}"
        runner(["launchctl", "bootout", f"{domain}/{LABEL}"])
        path.unlink()
        out.say(f"removed {path}")
    else:
        out.say(f"not installed (no {path})")
    return out


@dataclass(frozen=True)
class Status:
    installed: bool
    running: bool | None      # None: the service manager could not be asked
    path: Path
    detail: str


def status(*, home: Path, kind: str, runner: Runner = run, uid: int | None = None) -> Status:
    if kind == "systemd":
        path = unit_path(home)
        if not path.exists():
            return Status(False, None, path, "not installed")
        active = runner(["systemctl", "--user", "is-active", UNIT_NAME])
        state = (active.stdout or "").strip()
        if active.returncode == 0:
            return Status(True, True, path, f"installed; {UNIT_NAME} is {state}")
        if state in ("inactive", "failed", "activating", "deactivating"):
            return Status(True, False, path, f"installed; {UNIT_NAME} is {state}")
        return Status(True, None, path, "installed; systemd could not be asked "
                      f"({_why(active)})")
    path = plist_path(home)
    if not path.exists():
        return Status(False, None, path, "not installed")
    domain = f"gui/{os.getuid() if uid is None else uid}"
    printed = runner(["launchctl", "print", f"{domain}/{LABEL}"])
    if printed.returncode != 0:
        return Status(True, False, path, f"installed; {LABEL} is not loaded")
    running = "state = running" in printed.stdout
    return Status(True, running, path,
                  f"installed; {LABEL} is {'running' if running else 'loaded, not running'}")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)

"""`consent-ledger service`: the systemd unit and launchd agent, written, checked, removed.

The service managers themselves are replaced by a recording runner (none runs here: no
systemd user session, no macOS); `systemd-analyze verify` checks the unit file where it is
installed. What this cannot test: systemd starting the unit at login, launchd loading the
agent (README, "Running every day").
"""

from __future__ import annotations

import os
import plistlib
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from server import service
from server.service import LABEL, UNIT_NAME, ServiceSpec

ROOT = Path(__file__).resolve().parents[1]


class Recorder:
    """A stand-in for systemctl / launchctl: records each command, answers as told."""

    def __init__(self, answers: dict[str, tuple[int, str]] | None = None,
                 default: tuple[int, str] = (0, "")) -> None:
        self.calls: list[list[str]] = []
        self.answers = answers or {}
        self.default = default

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        code, out = self.answers.get(" ".join(args[:3]), self.default)
        return subprocess.CompletedProcess(list(args), code, out,
                                           "" if code == 0 else "Failed to connect to bus")


@pytest.fixture
def spec(tmp_path: Path) -> ServiceSpec:
    command, workdir = service.serve_command(8765, argv0="-m")
    return ServiceSpec(command=command, data_dir=tmp_path / "my data",
                       config_dir=tmp_path / "conf%ig", working_dir=workdir)


def test_serve_command_prefers_the_running_script(tmp_path: Path) -> None:
    script = tmp_path / "bin" / "consent-ledger"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    command, workdir = service.serve_command(9000, argv0=str(script))
    assert command == (str(script), "serve", "--port", "9000") and workdir is None
    command, workdir = service.serve_command(8765, argv0="/somewhere/server/cli.py",
                                             executable="/usr/bin/python3")
    assert command == ("/usr/bin/python3", "-m", "server.cli", "serve", "--port", "8765")
    assert workdir == ROOT


def test_systemd_unit_content(spec: ServiceSpec) -> None:
    unit = service.systemd_unit(spec)
    assert f"ExecStart={sys.executable} -m server.cli serve --port 8765" in unit
    assert f"WorkingDirectory={ROOT}" in unit
    assert f'Environment="CONSENT_LEDGER_DIR={spec.data_dir}"' in unit   # a space: quoted
    assert "conf%%ig" in unit                                              # % escaped
    for line in ("Restart=on-failure", "StandardOutput=journal", "StandardError=journal",
                 "WantedBy=default.target", "[Unit]", "[Service]", "[Install]"):
        assert line in unit.splitlines()
    assert "PASSPHRASE" not in unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (apt-get install systemd)")
def test_installed_unit_passes_systemd_analyze_verify(tmp_path: Path, spec: ServiceSpec) -> None:
    runner = Recorder()
    service.install(spec, home=tmp_path / "home", kind="systemd", runner=runner)
    path = service.unit_path(tmp_path / "home")
    checked = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.strip() == "", checked.stderr
    # the check is real: a unit with a relative command is refused
    bad = tmp_path / "bad.service"
    bad.write_text(service.systemd_unit(ServiceSpec(("python", "x"), tmp_path, tmp_path)))
    refused = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert refused.returncode != 0


def test_systemd_install_status_uninstall(tmp_path: Path, spec: ServiceSpec) -> None:
    home = tmp_path / "home"
    runner = Recorder(answers={"systemctl --user is-active": (0, "active\n")})
    assert not service.status(home=home, kind="systemd", runner=runner).installed
    out = service.install(spec, home=home, kind="systemd", runner=runner)
    path = home / ".config/systemd/user/consent-ledger.service"
    assert out.ok and path.read_text() == service.systemd_unit(spec)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert runner.calls == [["systemctl", "--user", "daemon-reload"],
                            ["systemctl", "--user", "enable", "--now", UNIT_NAME]]
    found = service.status(home=home, kind="systemd", runner=runner)
    assert found.installed and found.running and "active" in found.detail
    runner.calls.clear()
    out = service.uninstall(home=home, kind="systemd", runner=runner)
    assert not path.exists() and out.ok
    assert runner.calls[0] == ["systemctl", "--user", "disable", "--now", UNIT_NAME]
    assert not service.status(home=home, kind="systemd", runner=runner).installed
    assert "not installed" in service.uninstall(home=home, kind="systemd",
                                                runner=runner).lines[0]


def test_systemd_without_a_user_session_writes_the_file_and_says_how(
        tmp_path: Path, spec: ServiceSpec) -> None:
    home = tmp_path / "home"
    runner = Recorder(default=(1, ""))
    out = service.install(spec, home=home, kind="systemd", runner=runner)
    assert out.ok and service.unit_path(home).exists()
    text = "\n".join(out.lines)
    assert "no systemd user session" in text
    assert f"systemctl --user enable --now {UNIT_NAME}" in text
    assert runner.calls == [["systemctl", "--user", "daemon-reload"]]   # no enable attempted
    found = service.status(home=home, kind="systemd",
                           runner=Recorder(default=(1, "")))
    assert found.installed and found.running is None
    assert service.status(home=home, kind="systemd", runner=Recorder(
        default=(3, "inactive\n"))).running is False


def test_launchd_plist_round_trips(tmp_path: Path, spec: ServiceSpec) -> None:
    home = tmp_path / "home"
    data = service.launchd_plist(spec, home)
    agent = plistlib.loads(data)
    assert plistlib.dumps(agent, sort_keys=True) == data
    assert agent["Label"] == LABEL
    assert agent["ProgramArguments"] == list(spec.command)
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["EnvironmentVariables"]["CONSENT_LEDGER_DIR"] == str(spec.data_dir)
    assert agent["EnvironmentVariables"]["CONSENT_LEDGER_CONFIG_DIR"] == str(spec.config_dir)
    logs = home / "Library/Logs/consent-ledger"
    assert agent["StandardOutPath"] == str(logs / "serve.log")
    assert agent["StandardErrorPath"] == str(logs / "serve.err.log")
    assert agent["WorkingDirectory"] == str(ROOT)


@pytest.mark.skipif(shutil.which("plutil") is None, reason="plutil is macOS only")
def test_plist_passes_plutil_lint(tmp_path: Path, spec: ServiceSpec) -> None:   # pragma: no cover
    path = tmp_path / "agent.plist"
    path.write_bytes(service.launchd_plist(spec, tmp_path))
    assert subprocess.run(["plutil", "-lint", str(path)], check=False).returncode == 0


def test_launchd_install_status_uninstall(tmp_path: Path, spec: ServiceSpec) -> None:
    home = tmp_path / "home"
    runner = Recorder()
    out = service.install(spec, home=home, kind="launchd", runner=runner, uid=501)
    path = home / "Library/LaunchAgents" / f"{LABEL}.plist"
    assert out.ok and plistlib.loads(path.read_bytes())["Label"] == LABEL
    assert (home / "Library/Logs/consent-ledger").is_dir()
    assert ["launchctl", "bootstrap", "gui/501", str(path)] in runner.calls
    runner.answers = {f"launchctl print gui/501/{LABEL}": (0, "state = running\n")}
    found = service.status(home=home, kind="launchd", runner=runner, uid=501)
    assert found.installed and found.running
    assert service.status(home=home, kind="launchd", runner=Recorder(default=(113, "")),
                          uid=501).running is False
    out = service.uninstall(home=home, kind="launchd", runner=runner, uid=501)
    assert not path.exists()
    assert ["launchctl", "bootout", f"gui/501/{LABEL}"] in runner.calls


def test_unknown_platform_is_refused() -> None:
    with pytest.raises(service.ServiceError, match=r"systemd .* launchd"):
        service.platform_kind("win32")
    assert service.platform_kind("linux") == "systemd"
    assert service.platform_kind("darwin") == "launchd"


def test_cli_service_install_status_uninstall(tmp_path: Path) -> None:
    """The command itself, with a fake systemctl on PATH that has no user session."""
    home = tmp_path / "home"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n'
                    'echo "Failed to connect to bus: No medium found" >&2\nexit 1\n')
    fake.chmod(0o755)
    env = {**os.environ, "HOME": str(home), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    if not sys.platform.startswith("linux"):
        pytest.skip("the command-line test drives the Linux (systemd) path")
    done = cli("service", "install", "--port", "9123")
    assert done.returncode == 0, done.stderr
    unit = (home / ".config/systemd/user" / UNIT_NAME).read_text()
    assert "serve --port 9123" in unit
    assert f"CONSENT_LEDGER_DIR={tmp_path / 'data'}" in unit      # conftest's folders
    assert f"CONSENT_LEDGER_CONFIG_DIR={tmp_path / 'config'}" in unit
    assert "no systemd user session" in done.stdout
    shown = cli("service", "status")
    assert shown.returncode == 0 and "installed" in shown.stdout
    assert "not installed" not in shown.stdout
    gone = cli("service", "uninstall")
    assert gone.returncode == 0 and "removed" in gone.stdout
    assert not (home / ".config/systemd/user" / UNIT_NAME).exists()
    assert "not installed" in cli("service", "status").stdout
    assert "daemon-reload" in log.read_text()


def test_service_command_keeps_flask_out(tmp_path: Path) -> None:
    code = ("import sys; from server.cli import main; main(['service', 'status']); "
            "print('flask' in sys.modules)")
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout + done.stderr

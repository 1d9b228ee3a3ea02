"""Where a ledger's data and its keys live (CONTRACT.md section 3).

The data dir holds the encrypted ledger; the config dir holds keys, tokens and the running
server's hand-over file. They are kept apart so a backup or sync of the data dir leaks
nothing (SECURITY.md row 7).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "consent-ledger"
DATA_ENV = "CONSENT_LEDGER_DIR"
CONFIG_ENV = "CONSENT_LEDGER_CONFIG_DIR"


def data_dir(given: str | os.PathLike[str] | None = None) -> Path:
    """`--data-dir`, else $CONSENT_LEDGER_DIR, else the platform's user data dir."""
    if given:
        return Path(given).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def config_dir(given: str | os.PathLike[str] | None = None) -> Path:
    """`--config-dir`, else $CONSENT_LEDGER_CONFIG_DIR, else the platform's user config dir."""
    if given:
        return Path(given).expanduser()
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir(APP, appauthor=False))

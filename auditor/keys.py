"""Key material of one ledger, kept apart from its data (SECURITY.md rows 6 and 7).

One file per ledger in the config dir, `keys-<ledger id>.json`, mode 0600 in a 0700 folder:
- `data`: the AES-256-GCM key that encrypts every record;
- `index`: an HMAC key for the ids index (duplicate ids are found without decrypting);
- `signing`: the Ed25519 seed that signs checkpoints, reports and the server's hello;
- `account_salt`: CONTRACT section 1's salt for account labels, handed to the extension.

With `CONSENT_LEDGER_PASSPHRASE` set when the ledger is made, the file holds these wrapped
with AES-GCM under a key derived by scrypt; opening it then needs the same passphrase, and a
wrong one is an error that touches nothing.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

KEYS_FORMAT = "consent-ledger/keys/v1"
PASSPHRASE_ENV = "CONSENT_LEDGER_PASSPHRASE"
# scrypt cost: about 0.1 s and 32 MiB on a laptop; enough to make guessing slow.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


class KeysError(Exception):
    """Base for key problems; the message says what to do."""


class KeysMissingError(KeysError):
    pass


class WrongPassphraseError(KeysError):
    pass


@dataclass(frozen=True)
class LedgerKeys:
    ledger_id: str
    data: bytes
    index: bytes
    signing_seed: bytes
    account_salt: bytes

    @classmethod
    def generate(cls, ledger_id: str) -> LedgerKeys:
        return cls(ledger_id, AESGCM.generate_key(256), secrets.token_bytes(32),
                   secrets.token_bytes(32), secrets.token_bytes(32))

    def __post_init__(self) -> None:
        # Made once: a signature per acknowledged batch should not rebuild the key.
        object.__setattr__(self, "_signer",
                           Ed25519PrivateKey.from_private_bytes(self.signing_seed))

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        return self._signer  # type: ignore[attr-defined, no-any-return]

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()

    @property
    def public_key_b64(self) -> str:
        return public_key_b64(self.public_key)

    def sign(self, message: bytes) -> str:
        """Standard base64 of the Ed25519 signature of `message`."""
        return base64.b64encode(self.signing_key.sign(message)).decode()

    def _secrets(self) -> dict[str, str]:
        return {
            "data": _b64(self.data), "index": _b64(self.index),
            "signing": _b64(self.signing_seed), "account_salt": self.account_salt.hex(),
        }


def public_key_b64(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def key_path(config_dir: Path, ledger_id: str) -> Path:
    return config_dir / f"keys-{ledger_id}.json"


def save_keys(keys: LedgerKeys, config_dir: Path, *, passphrase: str | None = None) -> Path:
    """Write the key file (0600, folder 0700); refuses to overwrite an existing one."""
    ensure_private_dir(config_dir)
    body: dict[str, object] = {"format": KEYS_FORMAT, "ledger_id": keys.ledger_id}
    plain = json.dumps(keys._secrets()).encode()
    if passphrase:
        salt = secrets.token_bytes(16)
        nonce = secrets.token_bytes(12)
        wrap = _scrypt(passphrase, salt)
        body["wrapped"] = {
            "kdf": {"name": "scrypt", "salt": _b64(salt), "n": SCRYPT_N, "r": SCRYPT_R,
                    "p": SCRYPT_P},
            "nonce": _b64(nonce),
            "ciphertext": _b64(AESGCM(wrap).encrypt(nonce, plain, keys.ledger_id.encode())),
        }
    else:
        body["keys"] = keys._secrets()
    path = key_path(config_dir, keys.ledger_id)
    write_private_file(path, json.dumps(body, indent=1).encode(), exclusive=True)
    return path


def load_keys(config_dir: Path, ledger_id: str, *, passphrase: str | None = None) -> LedgerKeys:
    path = key_path(config_dir, ledger_id)
    try:
        body = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise KeysMissingError(
            f"no keys for ledger {ledger_id} in {config_dir} (expected {path.name}); "
            "set CONSENT_LEDGER_CONFIG_DIR to the folder that holds them") from None
    except (OSError, ValueError) as exc:
        raise KeysError(f"cannot read the key file {path}: {exc}") from None
    if body.get("format") != KEYS_FORMAT or body.get("ledger_id") != ledger_id:
        raise KeysError(f"{path} is not the key file of ledger {ledger_id}")
    if "wrapped" in body:
        if not passphrase:
            raise WrongPassphraseError(
                f"the keys of ledger {ledger_id} are protected by a passphrase: "
                f"set {PASSPHRASE_ENV}")
        w = body["wrapped"]
        kdf = w["kdf"]
        wrap = _scrypt(passphrase, _unb64(kdf["salt"]), n=kdf["n"], r=kdf["r"], p=kdf["p"])
        try:
            plain = AESGCM(wrap).decrypt(_unb64(w["nonce"]), _unb64(w["ciphertext"]),
                                         ledger_id.encode())
        except InvalidTag:
            raise WrongPassphraseError(
                f"wrong passphrase for ledger {ledger_id} ({PASSPHRASE_ENV}); "
                "nothing was changed") from None
        secrets_ = json.loads(plain)
    else:
        secrets_ = body["keys"]
    return LedgerKeys(
        ledger_id, _unb64(secrets_["data"]), _unb64(secrets_["index"]),
        _unb64(secrets_["signing"]), bytes.fromhex(secrets_["account_salt"]))


def ensure_private_dir(path: Path) -> None:
    """Make the folder (and parents) and set it to 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (path.stat().st_mode & 0o777) != 0o700:
        path.chmod(0o700)


def write_private_file(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write a 0600 file durably: temporary file, fsync, rename, fsync the folder."""
    if exclusive and path.exists():
        raise FileExistsError(f"{path} exists already; refusing to overwrite it")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _scrypt(passphrase: str, salt: bytes, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
            p: int = SCRYPT_P) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)

"""Encryption at rest of the most identifying fields (phone numbers, real names): envelope
encryption, and a keyed hash to find and keep unique what is encrypted.

- The master key (32 random bytes, base64 in FIELD_KEY_FILE, mode 0600) is never in the
  database: it only wraps (AES-256-GCM) the data keys. Its file can be replaced by a KMS that
  wraps and unwraps; nothing else reads it.
- The keyring (FIELD_KEYRING_FILE, JSON) holds the wrapped data keys, by version, and the wrapped
  lookup key. Each value is sealed with the data key of the current version (AES-256-GCM, a
  random 96-bit nonce each time); a ciphertext names its version, so old versions keep
  decrypting after a new one is made.
- Lookups and uniqueness use HMAC-SHA256 with the lookup key, a key of its own: equal values
  give equal digests, and the digest tells nothing without the key.
- Rotating the master key re-wraps the keys and touches no row (`flask keys rotate`).

No Flask, no database: the models' column type (app/auth/models.py) and the migration that
encrypted the existing rows (0021) use it alike.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core import private_files

_FORMAT = 1  # first byte of every ciphertext
_WRAP_AAD = b"qunfang field key"
_FIELD_AAD = b"qunfang field"


class FieldKeyError(RuntimeError):
    """A key is missing, unreadable or wrong: the application must not start without it."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)


def wrap(master: bytes, key: bytes) -> str:
    nonce = secrets.token_bytes(12)
    return _b64(nonce + AESGCM(master).encrypt(nonce, key, _WRAP_AAD))


def unwrap(master: bytes, wrapped: str) -> bytes:
    raw = _unb64(wrapped)
    try:
        return AESGCM(master).decrypt(raw[:12], raw[12:], _WRAP_AAD)
    except Exception as exc:  # InvalidTag: another master key
        raise FieldKeyError("the master key does not unwrap the keyring: wrong key file?") from exc


def read_master_key(path: str | os.PathLike) -> bytes:
    try:
        key = _unb64(Path(path).read_text().strip())
    except FileNotFoundError as exc:
        raise FieldKeyError(f"no master key at {path}") from exc
    except ValueError as exc:
        raise FieldKeyError(f"{path} holds no base64 key") from exc
    if len(key) != 32:
        raise FieldKeyError(f"{path} must hold 32 bytes (base64), not {len(key)}")
    return key


def new_master_key(path: str | os.PathLike) -> bytes:
    """A new random master key, written 0600 to `path` (which must not exist)."""
    key = AESGCM.generate_key(bit_length=256)
    private_files.ensure_dir(Path(path).parent, private_files.SECRET_DIR_MODE)
    with private_files.open_new(Path(path), private_files.SECRET_FILE_MODE) as handle:
        handle.write(_b64(key).encode())
    return key


@dataclass(frozen=True)
class Keyring:
    """Unwrapped keys, in memory only."""

    data_keys: dict[int, bytes]
    current: int
    lookup_key: bytes

    def encrypt(self, value: str) -> bytes:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self.data_keys[self.current]).encrypt(nonce, value.encode(), _FIELD_AAD)
        return bytes([_FORMAT]) + self.current.to_bytes(4, "big") + nonce + sealed

    def decrypt(self, blob: bytes) -> str:
        if not blob or blob[0] != _FORMAT:
            raise FieldKeyError("not a field ciphertext")
        version = int.from_bytes(blob[1:5], "big")
        key = self.data_keys.get(version)
        if key is None:
            raise FieldKeyError(f"no data key of version {version} in the keyring")
        return AESGCM(key).decrypt(blob[5:17], blob[17:], _FIELD_AAD).decode()

    def lookup(self, value: str) -> bytes:
        return hmac.new(self.lookup_key, value.encode(), hashlib.sha256).digest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _write_keyring(path: Path, document: dict) -> None:
    """Replace the keyring file atomically (a reader sees the old or the new, never half)."""
    private_files.ensure_dir(path.parent, private_files.SECRET_DIR_MODE)
    spare = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    with private_files.open_new(spare, private_files.SECRET_FILE_MODE) as handle:
        handle.write(json.dumps(document, indent=2).encode())
    os.replace(spare, path)


def load_keyring(master: bytes, path: str | os.PathLike) -> Keyring:
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise FieldKeyError(f"no keyring at {path}") from exc
    data_keys = {int(v): unwrap(master, w["wrapped"]) for v, w in document["data_keys"].items()}
    return Keyring(data_keys, int(document["current"]), unwrap(master, document["lookup_key"]))


def create_keyring(master: bytes, path: str | os.PathLike) -> Keyring:
    """A new keyring (data key version 1 and a lookup key) at `path`, which must not exist."""
    path = Path(path)
    if path.exists():
        raise FieldKeyError(f"{path} exists already")
    data_key, lookup_key = AESGCM.generate_key(256), AESGCM.generate_key(256)
    _write_keyring(
        path,
        {
            "current": 1,
            "data_keys": {"1": {"wrapped": wrap(master, data_key), "created_at": _now()}},
            "lookup_key": wrap(master, lookup_key),
            "wrapped_at": _now(),
        },
    )
    return Keyring({1: data_key}, 1, lookup_key)


def open_or_create(key_file: str, keyring_file: str, *, create: bool) -> Keyring:
    """The keyring of these files; both made on first use when `create` (development only)."""
    if create and not Path(key_file).exists() and not Path(keyring_file).exists():
        with contextlib.suppress(FileExistsError):  # another process made it first
            new_master_key(key_file)
    master = read_master_key(key_file)
    if create and not Path(keyring_file).exists():
        try:
            return create_keyring(master, keyring_file)
        except (FieldKeyError, FileExistsError):  # another process made it first
            pass
    return load_keyring(master, keyring_file)


def rewrap(old_master: bytes, new_master: bytes, path: str | os.PathLike) -> int:
    """Re-wrap every key of the keyring with `new_master`; no row changes. The number of keys."""
    path = Path(path)
    document = json.loads(path.read_text())
    for entry in document["data_keys"].values():
        entry["wrapped"] = wrap(new_master, unwrap(old_master, entry["wrapped"]))
    document["lookup_key"] = wrap(new_master, unwrap(old_master, document["lookup_key"]))
    document["wrapped_at"] = _now()
    _write_keyring(path, document)
    return len(document["data_keys"]) + 1


def add_data_key(master: bytes, path: str | os.PathLike) -> int:
    """A new data key version, current from now on for new writes; the old ones still decrypt.
    Its version number."""
    path = Path(path)
    document = json.loads(path.read_text())
    version = max(int(v) for v in document["data_keys"]) + 1
    document["data_keys"][str(version)] = {
        "wrapped": wrap(master, AESGCM.generate_key(256)),
        "created_at": _now(),
    }
    document["current"] = version
    _write_keyring(path, document)
    return version


# The process's keyring: installed by create_app, read by the column type, which has no other
# way to reach configuration.
_installed: Keyring | None = None


def install(keyring: Keyring) -> None:
    global _installed
    _installed = keyring


def installed() -> Keyring:
    if _installed is None:
        raise FieldKeyError("no field keyring installed (create_app installs it)")
    return _installed

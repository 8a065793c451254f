"""Signed manifests of clue batches (Ed25519), and how a recipient verifies one offline.

A clue batch is a ZIP archive. Its last member, `manifest.json`, lists every other member with
its size and SHA-256, describes the batch (id, creation time, purpose, case reference, number
of rows, ...), and is signed with Qunfang's Ed25519 key. To verify a batch:

1. Get Qunfang's public key through a channel you already trust (not from the ZIP itself): the
   32 raw bytes in base64, or the same key as PEM. Its key id is the first 16 hex characters of
   the SHA-256 of the 32 raw bytes; check that it equals the manifest's `key_id`.
2. Open the ZIP and read `manifest.json` (UTF-8 JSON). Check that `format` is
   `qunfang-clue-batch/1`.
3. Rebuild the signed content: the JSON object made of just the manifest's `format`, `batch`
   and `files` members, serialised canonically: keys sorted, no whitespace (separators `,` and
   `:`), non-ASCII characters written as they are, encoded in UTF-8; in Python,
   `json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()`.
   Its SHA-256, in lowercase hex, must equal the manifest's `digest`.
4. Verify the Ed25519 `signature` (base64) with the public key, over the 64 ASCII characters of
   the hex `digest`. With OpenSSL 3:
       printf %s "$DIGEST" > digest.txt; base64 -d signature.b64 > signature.bin
       openssl pkeyutl -verify -pubin -inkey qunfang.pem -rawin -in digest.txt \
           -sigfile signature.bin
5. For every entry of `files`, the ZIP member of that name must exist and have exactly that
   size in bytes and that SHA-256 (of its uncompressed content); the ZIP must hold no member
   other than these and `manifest.json`.

Only when all five steps pass is the batch complete and unaltered since Qunfang signed it; any
failure means the files must not be relied on. `verify_zip` does all of this; this module
depends on nothing but the Python standard library and `cryptography`, so it can be copied and
run on its own: `python signing.py BATCH.zip PUBLIC_KEY_BASE64`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

FORMAT = "qunfang-clue-batch/1"
MANIFEST_NAME = "manifest.json"
SEED_PREFIX = b"qunfang-clue-signing:"
_SIGNED_FIELDS = ("format", "batch", "files")
_CHUNK_SIZE = 1024 * 1024


class ManifestError(Exception):
    """The manifest or the files do not verify: do not rely on them."""


# -- keys --------------------------------------------------------------------------------------


def signing_key_from_seed(secret: str) -> Ed25519PrivateKey:
    """The signing key derived from a configured secret string: its seed is
    SHA-256(b"qunfang-clue-signing:" + secret in UTF-8)."""
    if not secret:
        raise ValueError("the clue signing secret is empty")
    seed = hashlib.sha256(SEED_PREFIX + secret.encode("utf-8")).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def _public_key(key: Ed25519PrivateKey | Ed25519PublicKey) -> Ed25519PublicKey:
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else key


def _raw_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    return _public_key(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """First 16 hex characters of the SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def public_key_info(key: Ed25519PrivateKey | Ed25519PublicKey) -> dict:
    """What to publish so recipients can verify: algorithm, key id, raw key in base64, PEM."""
    public = _public_key(key)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "algorithm": "Ed25519",
        "key_id": key_id(public),
        "public_key": base64.b64encode(_raw_public(public)).decode("ascii"),
        "public_key_pem": pem.decode("ascii"),
    }


def load_public_key(public_key_b64: str) -> Ed25519PublicKey:
    """The public key from its raw 32 bytes in base64; ManifestError if it is not one."""
    try:
        raw = base64.b64decode(public_key_b64, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ManifestError("the public key is not a base64 Ed25519 key") from exc


# -- manifests ---------------------------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """The one serialisation that is hashed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _digest(manifest: Mapping) -> str:
    return hashlib.sha256(canonical_json({k: manifest[k] for k in _SIGNED_FIELDS})).hexdigest()


def build_manifest(batch: dict, files: list[dict], key: Ed25519PrivateKey) -> dict:
    """The signed manifest of a batch. `batch` holds JSON values only (times as ISO strings);
    `files` are `{"name", "size", "sha256"}`, listed by name."""
    names = [entry["name"] for entry in files]
    if len(set(names)) != len(names):
        raise ValueError("a file is listed twice")
    if MANIFEST_NAME in names:
        raise ValueError(f"{MANIFEST_NAME} cannot list itself")
    listed = [
        {"name": str(e["name"]), "size": int(e["size"]), "sha256": str(e["sha256"]).lower()}
        for e in sorted(files, key=lambda entry: entry["name"])
    ]
    # What is signed is exactly what a recipient will parse back (tuples, int keys, ...).
    manifest: dict[str, Any] = json.loads(
        canonical_json({"format": FORMAT, "batch": batch, "files": listed})
    )
    manifest["digest"] = _digest(manifest)
    signature = key.sign(manifest["digest"].encode("ascii"))
    manifest["signature"] = base64.b64encode(signature).decode("ascii")
    manifest["key_id"] = key_id(key)
    return manifest


def manifest_json(manifest: dict) -> bytes:
    """The manifest as written into the ZIP: readable, indented JSON in UTF-8."""
    text = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def _check_manifest(manifest: Any, public_key_b64: str) -> None:
    if not isinstance(manifest, Mapping):
        raise ManifestError("the manifest is not a JSON object")
    missing = [f for f in (*_SIGNED_FIELDS, "digest", "signature") if f not in manifest]
    if missing:
        raise ManifestError(f"the manifest lacks {', '.join(missing)}")
    if manifest["format"] != FORMAT:
        raise ManifestError(f"unknown manifest format {manifest['format']!r}")
    public = load_public_key(public_key_b64)
    if "key_id" in manifest and manifest["key_id"] != key_id(public):
        raise ManifestError("the manifest was signed with another key")
    try:
        digest = _digest(manifest)
    except (TypeError, ValueError) as exc:
        raise ManifestError("the manifest's content cannot be serialised") from exc
    if not isinstance(manifest["digest"], str) or not hmac.compare_digest(
        digest, manifest["digest"]
    ):
        raise ManifestError("the digest does not match the manifest's content")
    try:
        signature = base64.b64decode(manifest["signature"], validate=True)
        public.verify(signature, digest.encode("ascii"))
    except (InvalidSignature, binascii.Error, ValueError, TypeError) as exc:
        raise ManifestError("the signature does not verify") from exc
    _listed(manifest)


def _listed(manifest: Mapping) -> dict[str, dict]:
    files = manifest["files"]
    if not isinstance(files, list):
        raise ManifestError("the manifest's files are not a list")
    listed: dict[str, dict] = {}
    for entry in files:
        if not isinstance(entry, Mapping) or not {"name", "size", "sha256"} <= entry.keys():
            raise ManifestError("a listed file lacks its name, size or sha256")
        if entry["name"] in listed:
            raise ManifestError(f"{entry['name']!r} is listed twice")
        listed[entry["name"]] = dict(entry)
    return listed


def _hash_stream(stream) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(_CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _compare(listed: dict[str, dict], name: str, size: int, sha256: str) -> None:
    entry = listed.get(name)
    if entry is None:
        raise ManifestError(f"{name!r} is not listed in the manifest")
    if size != entry["size"]:
        raise ManifestError(f"{name!r}: {size} bytes, the manifest says {entry['size']}")
    if not hmac.compare_digest(sha256, str(entry["sha256"])):
        raise ManifestError(f"{name!r}: its SHA-256 differs from the manifest's")


def verify_manifest(
    manifest: dict,
    public_key_b64: str,
    file_bytes_or_paths: Mapping[str, bytes | Path] | None = None,
) -> None:
    """Raise ManifestError unless the manifest's digest matches its content and its signature
    verifies with the public key (raw 32 bytes, base64). With `file_bytes_or_paths` (name to
    content or path; `manifest.json` itself is ignored), every listed file must be there with
    the listed size and SHA-256, and no unlisted file may be."""
    _check_manifest(manifest, public_key_b64)
    if file_bytes_or_paths is None:
        return
    listed = _listed(manifest)
    given = {name: v for name, v in file_bytes_or_paths.items() if name != MANIFEST_NAME}
    for name, content in given.items():
        if isinstance(content, bytes | bytearray | memoryview):
            data = bytes(content)
            _compare(listed, name, len(data), hashlib.sha256(data).hexdigest())
        else:
            with open(content, "rb") as file:
                _compare(listed, name, *_hash_stream(file))
    missing = sorted(set(listed) - set(given))
    if missing:
        raise ManifestError(f"missing file(s): {', '.join(missing)}")


def verify_zip(path: str | os.PathLike, public_key_b64: str) -> dict:
    """Verify a clue-batch ZIP (all five steps of the module's doc); return its manifest."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if len(set(names)) != len(names):
                raise ManifestError("the ZIP holds two members of the same name")
            if MANIFEST_NAME not in names:
                raise ManifestError(f"the ZIP holds no {MANIFEST_NAME}")
            try:
                manifest = json.loads(archive.read(MANIFEST_NAME).decode("utf-8"))
            except ValueError as exc:
                raise ManifestError(f"{MANIFEST_NAME} is not UTF-8 JSON") from exc
            _check_manifest(manifest, public_key_b64)
            listed = _listed(manifest)
            for name in names:
                if name == MANIFEST_NAME:
                    continue
                with archive.open(name) as member:
                    _compare(listed, name, *_hash_stream(member))
            missing = sorted(set(listed) - set(names))
            if missing:
                raise ManifestError(f"missing file(s): {', '.join(missing)}")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise ManifestError(f"not a readable ZIP: {exc}") from exc
    return manifest


def main(argv: list[str] | None = None) -> int:
    """`python signing.py BATCH.zip PUBLIC_KEY_BASE64`: exit 0 and print the batch if valid."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: signing.py BATCH.zip PUBLIC_KEY_BASE64", file=sys.stderr)
        return 2
    try:
        manifest = verify_zip(args[0], args[1])
    except ManifestError as exc:
        print(f"INVALID: {exc}", file=sys.stderr)
        return 1
    print("VALID: complete and signed by key", manifest.get("key_id", "?"))
    print(json.dumps(manifest["batch"], indent=2, ensure_ascii=False, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Signed manifests: a recipient can tell a complete, unaltered batch from anything else."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.exports import signing
from app.exports.files import write_zip
from app.exports.signing import (
    FORMAT,
    ManifestError,
    build_manifest,
    canonical_json,
    main,
    manifest_json,
    public_key_info,
    signing_key_from_seed,
    verify_manifest,
    verify_zip,
)

SECRET = "Hx3v-not-a-real-secret-9Qp"

FILES = {
    "tips.csv": "\ufefftip_id,code\r\nabc,QF-1\r\n".encode(),
    "tips.geojson": b'{"type":"FeatureCollection","features":[]}',
    "photos/abc/m1.jpg": b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4,
}
BATCH = {
    "id": "6f1c9e01-2f0d-4d6e-9a43-0b5b2f2e5d1a",
    "created_at": "2026-11-22T13:05:00+08:00",
    "purpose": "协查电动车盗窃",
    "case_reference": "京公东(刑)字[2026]1234号",
    "row_count": 1,
}


def entries(contents: dict[str, bytes]) -> list[dict]:
    return [
        {"name": n, "size": len(c), "sha256": hashlib.sha256(c).hexdigest()}
        for n, c in contents.items()
    ]


@pytest.fixture
def key():
    return signing_key_from_seed(SECRET)


@pytest.fixture
def public(key):
    return public_key_info(key)["public_key"]


@pytest.fixture
def manifest(key):
    return build_manifest(BATCH, entries(FILES), key)


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


# -- keys ------------------------------------------------------------------------------------------


def test_key_from_seed_is_deterministic_and_secret_dependent(key):
    again = signing_key_from_seed(SECRET)
    other = signing_key_from_seed(SECRET + "x")
    raw = serialization.Encoding.Raw
    private = serialization.PrivateFormat.Raw
    none = serialization.NoEncryption()
    assert key.private_bytes(raw, private, none) == again.private_bytes(raw, private, none)
    seed = hashlib.sha256(b"qunfang-clue-signing:" + SECRET.encode()).digest()
    assert key.private_bytes(raw, private, none) == seed
    assert public_key_info(key) == public_key_info(again)
    assert public_key_info(key)["public_key"] != public_key_info(other)["public_key"]
    with pytest.raises(ValueError):
        signing_key_from_seed("")


def test_public_key_info_pem_and_raw_describe_the_same_key(key):
    info = public_key_info(key)
    raw = base64.b64decode(info["public_key"], validate=True)
    assert info["algorithm"] == "Ed25519"
    assert len(raw) == 32
    assert info["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    assert info["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----\n")
    from_pem = serialization.load_pem_public_key(info["public_key_pem"].encode())
    assert isinstance(from_pem, Ed25519PublicKey)
    assert from_pem.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw
    signature = key.sign(b"hello")
    from_pem.verify(signature, b"hello")
    Ed25519PublicKey.from_public_bytes(raw).verify(signature, b"hello")


# -- manifest --------------------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8():
    assert canonical_json({"b": 1, "a": ["线索", None]}) == '{"a":["线索",null],"b":1}'.encode()


def test_manifest_shape_and_signature(manifest, key, public):
    assert manifest["format"] == FORMAT == "qunfang-clue-batch/1"
    assert manifest["batch"] == BATCH
    assert [f["name"] for f in manifest["files"]] == sorted(FILES)
    signed = {k: manifest[k] for k in ("format", "batch", "files")}
    assert manifest["digest"] == hashlib.sha256(canonical_json(signed)).hexdigest()
    assert manifest["key_id"] == public_key_info(key)["key_id"]
    Ed25519PublicKey.from_public_bytes(base64.b64decode(public)).verify(
        base64.b64decode(manifest["signature"]), manifest["digest"].encode("ascii")
    )


def test_manifest_verifies_with_the_published_key_and_files(manifest, public, tmp_path):
    verify_manifest(manifest, public)
    verify_manifest(manifest, public, FILES)
    # through its JSON form, and with files given as paths
    parsed = json.loads(manifest_json(manifest))
    paths = {}
    for name, content in FILES.items():
        path = tmp_path / name.replace("/", "_")
        path.write_bytes(content)
        paths[name] = path
    verify_manifest(parsed, public, {**paths, "manifest.json": b"ignored"})


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("where", [0, -1, "middle"])
def test_one_changed_byte_in_any_file_is_detected(manifest, public, name, where):
    content = FILES[name]
    index = len(content) // 2 if where == "middle" else where % len(content)
    with pytest.raises(ManifestError, match="SHA-256"):
        verify_manifest(manifest, public, {**FILES, name: flip(content, index)})


def test_missing_extra_or_resized_files_are_detected(manifest, public):
    with pytest.raises(ManifestError, match="missing"):
        verify_manifest(manifest, public, {k: v for k, v in FILES.items() if k != "tips.csv"})
    with pytest.raises(ManifestError, match="not listed"):
        verify_manifest(manifest, public, {**FILES, "photos/abc/m2.jpg": b"\xff\xd8"})
    with pytest.raises(ManifestError, match="bytes"):
        verify_manifest(manifest, public, {**FILES, "tips.csv": FILES["tips.csv"] + b"x"})


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m["batch"].update(row_count=2),
        lambda m: m["batch"].update(case_reference=m["batch"]["case_reference"][:-2] + "5号"),
        lambda m: m["batch"].update(purpose=m["batch"]["purpose"] + " "),
        lambda m: m["batch"].update(extra="added"),
        lambda m: m["files"].pop(),
        lambda m: m["files"][0].update(size=m["files"][0]["size"] + 1),
        lambda m: m["files"][1].update(sha256="0" * 64),
        lambda m: m.update(format="qunfang-clue-batch/2"),
        lambda m: m.update(digest="0" * 64),
    ],
)
def test_changed_metadata_is_detected(manifest, public, tamper):
    changed = copy.deepcopy(manifest)
    tamper(changed)
    with pytest.raises(ManifestError):
        verify_manifest(changed, public)


def test_digest_recomputed_by_a_forger_still_fails_the_signature(manifest, public):
    forged = copy.deepcopy(manifest)
    forged["batch"]["row_count"] = 99
    signed = {k: forged[k] for k in ("format", "batch", "files")}
    forged["digest"] = hashlib.sha256(canonical_json(signed)).hexdigest()
    with pytest.raises(ManifestError, match="signature"):
        verify_manifest(forged, public)


@pytest.mark.parametrize("index", [0, 31, 63])
def test_one_changed_byte_of_the_signature_is_detected(manifest, public, index):
    signature = base64.b64decode(manifest["signature"])
    assert len(signature) == 64
    changed = {**manifest, "signature": base64.b64encode(flip(signature, index)).decode()}
    with pytest.raises(ManifestError, match="signature"):
        verify_manifest(changed, public)


def test_garbage_signature_or_key_is_a_manifest_error(manifest, public):
    with pytest.raises(ManifestError):
        verify_manifest({**manifest, "signature": "not base64!"}, public)
    with pytest.raises(ManifestError):
        verify_manifest(manifest, "AAAA")
    with pytest.raises(ManifestError):
        verify_manifest({"format": FORMAT}, public)


def test_another_key_does_not_verify(manifest):
    other = public_key_info(signing_key_from_seed("another secret"))["public_key"]
    with pytest.raises(ManifestError):
        verify_manifest(manifest, other)
    # even if the key id is forged to match
    with pytest.raises(ManifestError, match="signature"):
        verify_manifest({k: v for k, v in manifest.items() if k != "key_id"}, other)


def test_batch_values_are_signed_as_json_will_read_them(key, public):
    manifest = build_manifest({"areas": ("a", "b"), "counts": {2: 1, 10: 3}}, [], key)
    verify_manifest(json.loads(manifest_json(manifest)), public)


def test_build_manifest_refuses_duplicate_or_self_listing(key):
    with pytest.raises(ValueError):
        build_manifest(BATCH, entries(FILES) + entries({"tips.csv": b""}), key)
    with pytest.raises(ValueError):
        build_manifest(BATCH, entries({"manifest.json": b""}), key)


# -- the whole ZIP, as a recipient gets it ---------------------------------------------------------


@pytest.fixture
def batch_zip(tmp_path, key):
    def manifest(files):
        return manifest_json(build_manifest(BATCH, files, key))

    return write_zip(tmp_path / "batch.zip", list(FILES.items()), manifest).path


def rewrite_zip(source, target, change):
    """Copy a ZIP member by member; change(name, data) returns the new data or None to drop."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = change(info.filename, old.read(info.filename))
            if data is not None:
                new.writestr(info, data)


def test_verify_zip_accepts_the_batch_and_cli_says_valid(batch_zip, public, capsys):
    manifest = verify_zip(batch_zip, public)
    assert manifest["batch"] == BATCH
    assert main([str(batch_zip), public]) == 0
    assert "VALID" in capsys.readouterr().out


def test_verifier_runs_as_a_standalone_script(batch_zip, public, tmp_path):
    """A recipient gets signing.py alone: it must need nothing of the project."""
    script = tmp_path / "verify_clue_batch.py"
    shutil.copy(Path(signing.__file__), script)
    command = [sys.executable, "-I", str(script), str(batch_zip), public]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S603
    assert result.returncode == 0, result.stderr
    assert "VALID" in result.stdout and "京公东" in result.stdout
    other = public_key_info(signing_key_from_seed("x"))["public_key"]
    command[-1] = other
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S603
    assert result.returncode == 1 and "INVALID" in result.stderr


@pytest.mark.parametrize("name", [*sorted(FILES), "manifest.json"])
def test_verify_zip_detects_a_changed_byte_in_any_member(batch_zip, public, tmp_path, name):
    target = tmp_path / "tampered.zip"

    def change(member, data):
        if member != name:
            return data
        if name == "manifest.json":  # one byte of the case reference
            return data.replace("1234号".encode(), "1235号".encode())
        return flip(data, len(data) // 2)

    rewrite_zip(batch_zip, target, change)
    with pytest.raises(ManifestError):
        verify_zip(target, public)
    assert main([str(target), public]) == 1


def test_verify_zip_detects_removed_and_added_members(batch_zip, public, tmp_path):
    removed = tmp_path / "removed.zip"
    rewrite_zip(batch_zip, removed, lambda n, d: None if n.endswith(".jpg") else d)
    with pytest.raises(ManifestError, match="missing"):
        verify_zip(removed, public)
    added = tmp_path / "added.zip"
    shutil.copy(batch_zip, added)
    with zipfile.ZipFile(added, "a") as archive:
        archive.writestr("photos/abc/extra.jpg", b"\xff\xd8")
    with pytest.raises(ManifestError, match="not listed"):
        verify_zip(added, public)


def test_verify_zip_flipped_raw_byte_is_detected(batch_zip, public, tmp_path):
    """A bit flipped in the archive file itself (here inside the stored photo)."""
    data = batch_zip.read_bytes()
    index = data.index(bytes(range(256))) + 100
    target = tmp_path / "flipped.zip"
    target.write_bytes(flip(data, index))
    with pytest.raises(ManifestError):
        verify_zip(target, public)


def test_verify_zip_refuses_a_non_zip(tmp_path, public):
    path = tmp_path / "x.zip"
    path.write_bytes(b"not a zip")
    with pytest.raises(ManifestError):
        verify_zip(path, public)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_documented_openssl_procedure_verifies(manifest, key, tmp_path):
    """Step 4 of the module's doc, as a recipient without Python would run it."""
    (tmp_path / "qunfang.pem").write_text(public_key_info(key)["public_key_pem"])
    (tmp_path / "digest.txt").write_bytes(manifest["digest"].encode("ascii"))
    (tmp_path / "signature.bin").write_bytes(base64.b64decode(manifest["signature"]))
    command = [
        "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "qunfang.pem", "-rawin",
        "-in", "digest.txt", "-sigfile", "signature.bin",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S603
    assert result.returncode == 0, result.stderr + result.stdout
    (tmp_path / "digest.txt").write_bytes(flip(manifest["digest"].encode("ascii"), 0))
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S603
    assert result.returncode != 0

"""Envelope encryption of fields (app/core/field_crypto.py): no database, files in tmp_path."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from app.core import field_crypto as fc


@pytest.fixture
def files(tmp_path):
    key, keyring = tmp_path / "secrets" / "field-key", tmp_path / "secrets" / "field-keyring.json"
    return str(key), str(keyring)


def test_a_value_reads_back_and_is_sealed_differently_each_time(files):
    keyring = fc.open_or_create(*files, create=True)
    one, two = keyring.encrypt("13912345678"), keyring.encrypt("13912345678")
    assert one != two
    assert b"13912345678" not in one
    assert keyring.decrypt(one) == keyring.decrypt(two) == "13912345678"
    assert keyring.lookup("13912345678") == keyring.lookup("13912345678")
    assert keyring.lookup("13912345678") != keyring.lookup("13912345679")


def test_a_tampered_ciphertext_is_refused(files):
    keyring = fc.open_or_create(*files, create=True)
    sealed = bytearray(keyring.encrypt("李娜"))
    sealed[-1] ^= 1
    with pytest.raises(InvalidTag):
        keyring.decrypt(bytes(sealed))


def test_the_key_files_are_private_and_hold_no_clear_key(files):
    keyring = fc.open_or_create(*files, create=True)
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    document = json.loads(Path(files[1]).read_text())
    assert keyring.data_keys[1].hex() not in json.dumps(document)
    assert set(document) == {"current", "data_keys", "lookup_key", "wrapped_at"}


def test_without_its_files_a_production_keyring_is_refused(files):
    with pytest.raises(fc.FieldKeyError):
        fc.open_or_create(*files, create=False)


def test_rotating_the_master_key_rewraps_and_old_values_still_read(files, tmp_path):
    key_file, keyring_file = files
    before = fc.open_or_create(key_file, keyring_file, create=True)
    sealed, digest = before.encrypt("王芳"), before.lookup("13912345678")
    old_master = fc.read_master_key(key_file)
    new_master = fc.new_master_key(tmp_path / "new-key")
    assert fc.rewrap(old_master, new_master, keyring_file) == 2
    with pytest.raises(fc.FieldKeyError):
        fc.load_keyring(old_master, keyring_file)
    after = fc.load_keyring(new_master, keyring_file)
    assert after.decrypt(sealed) == "王芳"
    assert after.lookup("13912345678") == digest


def test_a_new_data_key_seals_new_values_and_the_old_ones_still_read(files):
    key_file, keyring_file = files
    first = fc.open_or_create(key_file, keyring_file, create=True)
    old = first.encrypt("王芳")
    assert fc.add_data_key(fc.read_master_key(key_file), keyring_file) == 2
    second = fc.load_keyring(fc.read_master_key(key_file), keyring_file)
    new = second.encrypt("王芳")
    assert new[1:5] == (2).to_bytes(4, "big")
    assert second.decrypt(old) == second.decrypt(new) == "王芳"
    with pytest.raises(fc.FieldKeyError):
        first.decrypt(new)  # a process still on the old keyring cannot read version 2


@pytest.mark.parametrize("content", ["", "not base64!", "c2hvcnQ="])
def test_a_bad_master_key_file_is_refused(tmp_path, content):
    path = tmp_path / "field-key"
    path.write_text(content)
    with pytest.raises(fc.FieldKeyError):
        fc.read_master_key(path)

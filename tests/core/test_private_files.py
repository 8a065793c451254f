"""Files under var/ (photos, clue batches, local secrets) are 0640 or stricter and folders
0750 or stricter from their creation, whatever the process umask; folders left looser by an
older checkout are narrowed when next used."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app import config
from tests.exports import test_batches
from tests.exports.test_batches import _create, _post_tip
from tests.tips.conftest import jpeg, upload

liaison, run_jobs = test_batches.liaison, test_batches.run_jobs  # the fixtures of those tests


def too_open(root: Path) -> dict[str, str]:
    """What under `root` (itself excluded: it is the deployment's) others may read or the
    group may write: files beyond 0640, folders beyond 0750."""
    loose = {}
    for path in root.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & ~(0o750 if path.is_dir() else 0o640):
            loose[str(path.relative_to(root))] = oct(mode)
    return loose


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def var(app, tmp_path, monkeypatch) -> Path:
    """A private var/ for this test: photos, clue batches and local secrets go there."""
    var = tmp_path / "var"
    var.mkdir()
    monkeypatch.setitem(app.config, "STORAGE_BACKEND", "local")  # whatever QF_TEST_STORAGE says
    monkeypatch.setitem(app.config, "MEDIA_ROOT", str(var / "media"))
    monkeypatch.setitem(app.config, "EXPORT_ROOT", str(var / "exports"))
    monkeypatch.setattr(config, "LOCAL_SECRETS_DIR", var / "secrets")
    return var


@pytest.fixture
def no_umask():
    """The most permissive umask: only the modes the code asks for protect the files."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_photos_batches_and_secrets_are_private_whatever_the_umask(
    client, var, no_umask, liaison, run_jobs, create_user, token_for
):
    assert len(config.local_secret("SECRET_KEY")) >= 32
    reporter = token_for(create_user())
    photo = upload(client, jpeg(), headers=reporter).json["id"]
    tip = _post_tip(client, reporter, police_contact_consent=True, media_ids=[photo])
    _user, headers = liaison
    batch_id = _create(client, headers, tip_ids=[tip["id"]]).json["id"]
    assert run_jobs(batch_id) == 1

    assert too_open(var) == {}
    assert _mode(var / "secrets") == 0o700 and _mode(var / "secrets" / "secret_key") == 0o600
    assert _mode(var / "exports" / batch_id) == 0o750
    assert {_mode(p) for p in (var / "exports" / batch_id).iterdir()} == {0o640}
    assert {_mode(p) for p in (var / "media").rglob("*") if p.is_file()} == {0o640}
    assert {_mode(p) for p in (var / "media").rglob("*") if p.is_dir()} == {0o750}


def test_folders_of_an_older_checkout_are_narrowed_when_next_used(
    client, var, create_user, token_for
):
    for name in ("media", "secrets"):
        (var / name).mkdir(0o755)
        os.chmod(var / name, 0o755)  # noqa: S103 - what an older checkout made
    config.local_secret("SECRET_KEY")
    assert upload(client, jpeg(), headers=token_for(create_user())).status_code == 201
    assert _mode(var / "secrets") == 0o700
    assert _mode(var / "media") == 0o750

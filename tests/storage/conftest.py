"""The storage suite runs every test of test_backends.py against both backends: the local
directory, and S3 on moto's server (a subprocess on 127.0.0.1, tests/fakes/s3.py), each test
on a fresh bucket or folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.storage import LocalStore, ObjectStore, S3Store
from tests.fakes.s3 import S3Server, shared_server


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    return shared_server()


@pytest.fixture(params=["local", "s3"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def store(backend: str, tmp_path: Path, request) -> ObjectStore:
    if backend == "local":
        return LocalStore(tmp_path / "store")
    server: S3Server = request.getfixturevalue("s3_server")
    return S3Store(server.client(), server.new_bucket(), "media/")


@pytest.fixture
def stores_of(backend: str, app, tmp_path: Path, monkeypatch, request):
    """The app's files on `backend` for this test (a private folder, or a fresh bucket)."""
    if backend == "local":
        settings = {
            "STORAGE_BACKEND": "local",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "EXPORT_ROOT": str(tmp_path / "exports"),
        }
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        settings = {**server.settings(server.new_bucket()), "EXPORT_ROOT": str(tmp_path / "work")}
    for name, value in settings.items():
        monkeypatch.setitem(app.config, name, value)
    return settings

"""Which stored objects rows still point to: a rule of the package owning each kind of object.

The orphan sweep (app/storage/jobs.py) deletes objects no row points to. Storage knows its
stores, not the rows: each package that keeps objects registers, at app start (create_app), the
store and the key prefix of its objects and a function telling which of a list of its keys are
still referenced, so storage imports none of the packages built on it (the layers in
pyproject.toml). A key under no registered prefix is not ours to judge: it is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

# referenced(session, keys): those of `keys` a row still points to.
Referenced = Callable[[Session, Sequence[str]], set[str]]

_owners: dict[str, dict[str, Referenced]] = {}  # store name -> key prefix -> rule


def register(store: str, prefix: str, referenced: Referenced) -> None:
    """Objects of `store` ("media" or "exports") whose key starts with `prefix` ("" for every
    key no longer prefix claims) are judged by `referenced`. Registering a prefix again (another
    app) replaces its rule."""
    if store not in ("media", "exports"):
        raise ValueError(f"no store {store!r}")
    _owners.setdefault(store, {})[prefix] = referenced


def referenced(session: Session, store: str, keys: Sequence[str]) -> set[str]:
    """The keys of `store` to keep: those a row points to, and those no registered owner
    claims."""
    rules = _owners.get(store, {})
    prefixes = sorted(rules, key=len, reverse=True)  # the longest prefix claims a key
    claimed: dict[str, list[str]] = {}
    kept: set[str] = set()
    for key in keys:
        owner = next((p for p in prefixes if key.startswith(p)), None)
        if owner is None:
            kept.add(key)
        else:
            claimed.setdefault(owner, []).append(key)
    for prefix, owned in claimed.items():
        kept |= rules[prefix](session, owned)
    return kept

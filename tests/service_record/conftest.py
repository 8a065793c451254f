"""Service records are credited from patrols (and tasks): their tests start patrols and send
check-ins with the patrol tests' own fixtures."""

from __future__ import annotations

from tests.patrols.conftest import send, start_patrol, volunteer

__all__ = ["send", "start_patrol", "volunteer"]

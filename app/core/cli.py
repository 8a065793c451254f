"""Helpers for `flask` commands."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click

from app.core.errors import DomainError


def domain_errors_as_messages(command: Callable) -> Callable:
    """A business rule's refusal ends the command with its message, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DomainError as exc:
            raise click.ClickException(exc.detail) from exc

    return wrapper

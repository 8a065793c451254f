"""`flask` commands for operators: demo data and job workers."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.core import jobs as jobs_module

demo_cli = AppGroup("demo", help="Demo data for development (refused in production).")
jobs_cli = AppGroup("jobs", help="Background job workers.")


@demo_cli.command("load")
def load_demo() -> None:
    """Load the demo data set (idempotent: running it again changes nothing)."""
    if current_app.config["ENV"] == "production":
        raise click.ClickException("demo data is never loaded in production (QF_ENV=production)")
    click.echo("demo: nothing to load yet")


@jobs_cli.command("worker")
@click.option("--concurrency", default=2, show_default=True, help="Jobs run at the same time.")
@click.option("--queue", "queues", multiple=True, help="Only these queues (default: all).")
@click.option("--once", is_flag=True, help="Run the jobs waiting now, then exit.")
def worker(concurrency: int, queues: tuple[str, ...], once: bool) -> None:
    """Run a job worker (periodic jobs included) until SIGINT/SIGTERM."""
    jobs_module.run_worker(
        current_app._get_current_object(),
        wait=not once,
        concurrency=concurrency,
        queues=list(queues) or None,
    )


def register_cli(app: Flask) -> None:
    app.cli.add_command(demo_cli)
    app.cli.add_command(jobs_cli)

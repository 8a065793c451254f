"""`flask` commands for operators: demo data, job workers, areas and accounts."""

from __future__ import annotations

import datetime as dt

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app import demo
from app.areas.cli import areas_cli
from app.auth.cli import users_cli
from app.core import jobs as jobs_module
from app.core.keys_cli import keys_cli
from app.demo import simulate as simulation
from app.extensions import db
from app.open311.cli import open311_cli
from app.stations.cli import stations_cli

demo_cli = AppGroup("demo", help="Demo data for development (refused in production).")
jobs_cli = AppGroup("jobs", help="Background job workers.")


@demo_cli.command("load")
def load_demo() -> None:
    """Load the demo data set (idempotent: running it again changes nothing)."""
    if current_app.config["ENV"] == "production":
        raise click.ClickException("demo data is never loaded in production (QF_ENV=production)")
    demo.load(db.session, log=lambda line: click.echo(f"demo: {line}"))
    db.session.commit()
    click.echo(f"demo: data from {demo.SOURCE}; see app/demo/data/ATTRIBUTION.md")
    click.echo(f"demo: accounts (development only), password {demo.DEMO_PASSWORD}:")
    for phone, name, roles, codes, _home in demo.DEMO_ACCOUNTS:
        where = f" in {', '.join(codes)}" if codes else ""
        click.echo(f"demo:   {phone}  {', '.join(roles)}{where}  ({name})")


@demo_cli.command("simulate")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 28))
@click.option("--seed", default=17, show_default=True, help="Same seed, same rows.")
@click.option(
    "--until",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M"]),
    help="The simulated period's end, UTC (default: now, to the hour).",
)
@click.option("--if-absent", is_flag=True, help="Say so and succeed when one is loaded already.")
def simulate_demo(days: int, seed: int, until: dt.datetime | None, if_absent: bool) -> None:
    """Simulate a recent week on top of the demo data: tips, patrols, checkpoints, tasks and a
    clue batch, every row flagged `generated` (needs `flask demo load` first)."""
    if current_app.config["ENV"] == "production":
        raise click.ClickException("demo data is never loaded in production (QF_ENV=production)")
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    end = until.replace(tzinfo=dt.UTC) if until else now
    if simulation.already_simulated(db.session):
        if if_absent:
            click.echo("demo: a simulation is loaded already")
            return
        raise click.ClickException("a simulation is loaded already (rows flagged generated)")
    with click.progressbar(length=simulation.steps(days), label="demo: simulating") as bar:
        made = simulation.simulate(db.session, days=days, seed=seed, now=end, tick=bar.update)
    db.session.commit()
    click.echo("demo: simulated " + ", ".join(f"{n} {what}" for what, n in made.items()))


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
    app.cli.add_command(areas_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(stations_cli)
    app.cli.add_command(open311_cli)
    app.cli.add_command(keys_cli)

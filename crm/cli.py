"""The `crm` command: Flask's own commands (run, db, shell) plus the shop's operator jobs."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from crm.extensions import db
from crm.models import ROLES


def _create_app():
    from crm import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False,
             help="Run and operate the shop CRM. `crm run` serves it; `crm db upgrade` migrates.")
def main():
    """Entry point of the `crm` console script."""


@click.command("create-user")
@click.option("--email", required=True, help="Sign-in email address.")
@click.option("--name", required=True, help="Name shown in the app.")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True, help="What the user may do.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Password (asked for when not given).")
@with_appcontext
def create_user_command(email, name, role, password):
    """Create a user who can sign in."""
    from crm.services import users
    from crm.services.errors import ValidationError

    try:
        user = users.create_user(email, name, role, password)
    except ValidationError as error:
        for field, reason in error.fields.items():
            click.echo(f"{field}: {reason}", err=True)
        raise SystemExit(1)
    db.session.commit()
    click.echo(f"Created {user.role} {user.email}.")


@click.command("demo")
@click.option("--contacts", default=300, show_default=True, type=click.IntRange(1, 200_000), help="How many contacts.")
@click.option("--seed", default=1, show_default=True, type=int, help="Same seed, same shop.")
@with_appcontext
def demo_command(contacts, seed):
    """Fill an empty database with a believable demo shop."""
    from crm.services import demo

    try:
        result = demo.generate(contacts=contacts, seed=seed, progress=True)
    except demo.NotEmpty as error:
        raise click.ClickException(str(error))
    db.session.commit()
    click.echo(
        f"Demo shop: {result['contacts']} contacts, {result['orders']} orders, "
        f"{result['interactions']} interactions, {result['tasks']} to-dos."
    )


def _as_of(_ctx, _param, value):
    """Return --as-of as an aware UTC time: a date means noon UTC that day."""
    from datetime import datetime, time, timezone

    if value is None:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time(12), tzinfo=timezone.utc)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use a date such as 2026-12-01 or a UTC time such as 2026-12-01T08:30")
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


@click.command("refresh")
@click.option("--as-of", "now", callback=_as_of, metavar="DATE",
              help="Run the rules as at this date (noon UTC) or UTC time instead of now.")
@with_appcontext
def refresh_command(now):
    """Re-derive stages, health, scores and to-dos for everyone (safe to run twice)."""
    import time

    from crm.services import engine

    started = time.perf_counter()
    with click.progressbar(length=engine.contact_count(), label="Refreshing contacts", file=None) as bar:

        def batch_done(count):
            # Commit each batch so the shop's own writes never wait long for the lock.
            db.session.commit()
            bar.update(count)

        summary = engine.refresh(now, progress=batch_done)
    db.session.commit()
    click.echo(f"Refreshed {summary} in {time.perf_counter() - started:.1f} s.")


@click.group("api-token")
def api_token_group():
    """Create and revoke API tokens."""


@api_token_group.command("create")
@click.option("--user", "email", required=True, help="Email of the user the token acts as.")
@click.option("--name", required=True, help="What the token is for, e.g. 'Zapier'.")
@with_appcontext
def api_token_create(email, name):
    """Create a token; it is printed once, alone on the last line."""
    from crm.services import api_tokens, users
    from crm.services.errors import ValidationError

    user = users.by_email(email)
    if user is None:
        raise click.ClickException(f"No user with the email {email}.")
    try:
        _token, plain = api_tokens.create_token(user, name)
    except ValidationError as error:
        raise click.ClickException("; ".join(error.fields.values()))
    db.session.commit()
    click.echo(f"Token for {user.email} ({user.role}). It is shown only now; store it safely:")
    click.echo(plain)


def register_commands(app: Flask) -> None:
    """Add the shop's commands to the app's CLI."""
    # One line per command; keep the list sorted so parallel additions merge cleanly.
    for command in (
        api_token_group,
        create_user_command,
        demo_command,
        refresh_command,
    ):
        app.cli.add_command(command)

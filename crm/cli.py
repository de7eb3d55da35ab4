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


IMPORT_KINDS = ("shopify-orders", "shopify-customers", "woocommerce-orders", "woocommerce-customers", "orders")


@click.command("import")
@click.argument("kind", type=click.Choice(IMPORT_KINDS))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--format", "fmt", type=click.Choice(("csv", "tsv", "json", "ndjson")),
              help="The file's format (default: from its extension, else the kind's usual one).")
@click.option("--map", "mapping", multiple=True, metavar="FILECOL=field",
              help="For `orders`: read a file column as one of the fields (order_id, customer_id, email, "
                   "first_name, last_name, placed_at, total, currency, status, phone, number, subtotal, "
                   "discount, shipping, tax). Repeat for each column.")
@click.option("--source", help="For `orders`: where the orders come from (default 'import').")
@click.option("--dry-run", is_flag=True, help="Read and check everything, report the counts, store nothing.")
@click.option("--rejected-csv", type=click.Path(dir_okay=False, writable=True),
              help="Also write every rejected row (line, reason, the row) to this CSV file.")
@with_appcontext
def import_command(kind, file, fmt, mapping, source, dry_run, rejected_csv):
    """Import orders or customers from a Shopify, WooCommerce or any orders file."""
    import csv
    import os
    import sys

    from crm.services.importing import run as importing

    with open(file, "rb") as handle:
        reason = importing.not_text_reason(handle.read(8192))
    if reason:
        raise click.ClickException(f"{file}: {reason}")
    try:
        mapping_dict = importing.parse_mapping(mapping)
        with open(file, "rb") as handle, click.progressbar(
            length=os.path.getsize(file) or 1, label=f"Importing {os.path.basename(file)}",
            file=sys.stderr,
        ) as bar:
            done = [0]

            def progress(position):
                bar.update(max(position - done[0], 0))
                done[0] = max(done[0], position)

            run = importing.run_import(kind, handle, os.path.basename(file), fmt=fmt, mapping=mapping_dict,
                                       source=source, dry_run=dry_run, progress=progress)
    except importing.ImportRefused as error:
        raise click.ClickException(str(error))
    title = "Dry run (nothing was stored)" if dry_run else f"Import #{run.id}"
    click.echo(f"{title}: {kind} from {run.filename}")
    for line in importing.summary_lines(run):
        click.echo(f"  {line}")
    if run.status == "failed":
        raise click.ClickException(f"The file could not be read: {run.error}")
    rejected = run.counts.get("rejected", 0)
    if rejected:
        shown = importing.first_rejections(run.id, 5)
        click.echo("First rejected rows:")
        for rejection in shown:
            click.echo(f"  line {rejection.line}: {rejection.reason}")
        if rejected_csv:
            with open(rejected_csv, "w", newline="", encoding="utf-8") as out:
                csv.writer(out).writerows(importing.rejection_rows(run.id))
            click.echo(f"All {rejected} rejected rows are in {rejected_csv}.")
        else:
            click.echo(f"All {rejected} rejected rows: the Imports page (/imports/{run.id}) has them as CSV, "
                       "or run again with --rejected-csv FILE.")


def register_commands(app: Flask) -> None:
    """Add the shop's commands to the app's CLI."""
    # One line per command; keep the list sorted so parallel additions merge cleanly.
    for command in (
        api_token_group,
        create_user_command,
        demo_command,
        import_command,
    ):
        app.cli.add_command(command)

"""The `crm` command: Flask's own commands (run, db, shell) plus the shop's operator jobs."""
from __future__ import annotations

import shlex
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from crm.extensions import db
from crm.models import ROLES


def _create_app():
    from crm import create_app

    return create_app()


# Flask's own commands that are no part of running a shop: hidden from `crm --help`, still callable.
HIDDEN_COMMANDS = {"shell", "routes", "limiter"}
# Commands that work (or are needed) before the database is migrated.
BEFORE_MIGRATION = {"db", "run", "restore", "backup", "shell", "routes", "limiter"}


def _missing_tables(error: BaseException) -> bool:
    text = str(getattr(error, "orig", error)).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)


class CrmGroup(FlaskGroup):
    """Flask's group, showing only the CRM's commands and answering an un-migrated database in one line."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.name in ("env_file", "app", "debug"):
                param.hidden = True

    def list_commands(self, ctx):
        return [name for name in super().list_commands(ctx) if name not in HIDDEN_COMMANDS]

    def invoke(self, ctx):
        from sqlalchemy.exc import DBAPIError

        from crm.services.setup.schema import UPGRADE_HINT

        words = [*getattr(ctx, "_protected_args", ()), *ctx.args]
        name = words[0] if words else None
        asks_help = any(arg in ("--help", "-h") for arg in words)
        if name and name not in BEFORE_MIGRATION and not asks_help and self.get_command(ctx, name) is not None:
            from flask.cli import ScriptInfo

            from crm.services.setup import schema

            app = ctx.ensure_object(ScriptInfo).load_app()
            with app.app_context():
                ready = schema.is_migrated()
                db.session.remove()
            if not ready:
                raise click.ClickException(UPGRADE_HINT)
        try:
            return super().invoke(ctx)
        except DBAPIError as error:
            if _missing_tables(error):
                raise click.ClickException(UPGRADE_HINT) from None
            raise


@click.group(cls=CrmGroup, create_app=_create_app, add_version_option=False,
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
    from crm.services.shared.errors import ValidationError
    from crm.services.staff import users

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
    from crm.services.shop import demo

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
    """Re-derive predictions, stages, health, scores and to-dos for everyone (safe to run twice)."""
    import time

    from crm.services.jobs.maintenance import refresh_everyone_now
    from crm.services.rules import engine

    started = time.perf_counter()
    with click.progressbar(length=engine.contact_count(), label="Refreshing contacts", file=None) as bar:

        def step_started(label):
            # The bar counts the rules' contacts; the label says what the wait before them is.
            bar.label = label
            bar.render_progress()

        summary = refresh_everyone_now(now=now, on_batch=bar.update, on_step=step_started)
    from crm.services.segments.store import record_segment_sizes
    from crm.services.shop.clock import shop_today

    recorded = record_segment_sizes(shop_today(now) if now else None)  # each segment's size for the day
    db.session.commit()
    click.echo(f"Refreshed {summary} in {time.perf_counter() - started:.1f} s; recorded the size of {recorded} segment(s).")
    for note in summary.notes:
        click.echo(note)


@click.command("predict")
@click.option("--as-of", "as_of", callback=_as_of, metavar="DATE",
              help="Predict as at this date (noon UTC) or UTC time instead of now; later orders are ignored.")
@click.option("--json", "as_json", is_flag=True, help="Print the fitted parameters as JSON instead of words.")
@click.option("--holdout-weeks", "holdout_weeks", type=click.IntRange(min=1), default=None, metavar="N",
              help="Check the model instead: fit on the history up to N weeks before the as-of and compare its "
                   "predictions with those N weeks (the figures of the model check page). Stores nothing.")
@with_appcontext
def predict_command(as_of, as_json, holdout_weeks):
    """Fit the purchase and spend models and store every customer's segment and predictions.

    Stores the RFM segment of every customer and, where the shop's orders allow an honest
    fit, the chance each customer still buys, their expected orders in the next 90 days,
    their predicted 12-month value and when their next order is due. When there is too
    little data it stores no predictions and says why. Exits 0 either way.
    """
    import json
    import os
    import time

    # Before numpy loads: the fits are serial, and idle BLAS threads spinning on a busy
    # server only slow them down.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from crm.database import read_only
    from crm.services.insight import predict
    from crm.services.rules import engine

    started = time.perf_counter()
    if holdout_weeks is not None:
        from crm.services.insight import model_check

        with read_only():
            checked = model_check.check(as_of, holdout_weeks)
            db.session.commit()
        if as_json:
            click.echo(json.dumps(checked.as_json()))
        else:
            click.echo(model_check.describe(checked))
            click.echo(f"Done in {time.perf_counter() - started:.1f} s.")
        return
    # Read and fit in a read transaction (on SQLite it does not take the write lock), then write
    # committing each batch, so the shop's own writes never wait long.
    with read_only():
        prepared = predict.prepare(as_of)
        db.session.commit()
    result = predict.store(prepared, progress=lambda _count: db.session.commit())
    db.session.commit()
    # Health and the to-dos read the predictions: run the rules too, so no contact page shows a
    # win-back to-do beside "94% likely still active".
    rules = engine.apply(None, as_of, progress=lambda _count: db.session.commit())
    db.session.commit()
    if as_json:
        click.echo(json.dumps(result.as_json()))
        return
    click.echo(str(result))
    click.echo(f"Rules: {rules}.")
    click.echo(f"Done in {time.perf_counter() - started:.1f} s.")


@click.group("api-token")
def api_token_group():
    """Create API tokens (revoke them on Settings → API tokens)."""


@api_token_group.command("create")
@click.option("--user", "email", required=True, help="Email of the user the token acts as.")
@click.option("--name", required=True, help="What the token is for, e.g. 'Zapier'.")
@with_appcontext
def api_token_create(email, name):
    """Create a token; it is printed once, alone on the last line."""
    from crm.services.shared.errors import ValidationError
    from crm.services.staff import api_tokens, users

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


@click.command("backup")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@with_appcontext
def backup_command(path):
    """Copy the live database to a file while the app runs (SQLite); print pg_dump's command (PostgreSQL).

    PATH defaults to instance/backups/crm-YYYYmmdd-HHMMSS.sqlite3; a directory gets that name inside it.
    """
    from crm.models import utcnow
    from crm.services.shop import backups

    now = utcnow()
    live = backups.sqlite_file(db.engine.url)
    if live is None:
        if db.engine.dialect.name != "postgresql":
            raise click.ClickException(f"Backups of {db.engine.dialect.name} databases are not supported.")
        target = str(path or f"crm-{now:%Y%m%d-%H%M%S}.dump")
        click.echo("The database is PostgreSQL; back it up with pg_dump (it asks for the password, "
                   "or reads PGPASSWORD or ~/.pgpass):")
        click.echo(shlex.join(backups.pg_dump_command(db.engine.url, target)))
        return
    if path is None:
        path = backups.default_backup_path(current_app.instance_path, now)
    elif path.is_dir():
        path = path / backups.backup_name(now)
    try:
        backups.check_live_database(live)
        made = backups.backup_sqlite(live, path)
    except backups.BackupError as error:
        raise click.ClickException(str(error))
    click.echo(str(made))


@click.command("restore")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="Replace the live database without asking.")
@with_appcontext
def restore_command(path, yes):
    """Replace the live SQLite database with a backup, after checking it is a CRM database this version knows.

    Stop the app first. The database it replaces is kept beside it as <name>.before-restore.
    """
    from crm.services.shop import backups

    live = backups.sqlite_file(db.engine.url)
    if live is None:
        raise click.ClickException(
            "The database is not a SQLite file; restore a PostgreSQL dump with "
            "`pg_restore --clean --no-owner --dbname DATABASE FILE`, then run `crm db upgrade`."
        )
    known, head = backups.migration_revisions(current_app.extensions["migrate"].directory)
    try:
        revision = backups.check_backup(path, known)
    except backups.BackupError as error:
        raise click.ClickException(str(error))
    if not yes:
        click.confirm(f"Replace the database {live} with {path} (schema version {revision})?", abort=True)
    db.session.remove()
    db.engine.dispose()
    kept = backups.restore_sqlite(path, live)
    click.echo(f"Restored {path} into {live}.")
    if kept:
        click.echo(f"The database it replaced is kept as {kept}.")
    if revision != head:
        click.echo("The backup has an older schema; run `crm db upgrade` before starting the app.")


@click.group("privacy")
def privacy_group():
    """Export or erase everything held about one contact."""


@privacy_group.command("export")
@click.argument("contact_id", type=int)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True,
              help="Directory to write the zip into.")
@with_appcontext
def privacy_export(contact_id, out):
    """Write a zip of everything held about a contact (JSON and CSV) and print its path."""
    from crm.models import utcnow
    from crm.services.shared.errors import NotFound
    from crm.services.trust import privacy

    now = utcnow()
    try:
        data = privacy.export_contact(contact_id, now=now)
    except NotFound as error:
        raise click.ClickException(str(error))
    out.mkdir(parents=True, exist_ok=True)
    target = out / privacy.export_filename(contact_id, now)
    target.write_bytes(data)
    db.session.commit()
    click.echo(str(target))


@privacy_group.command("erase")
@click.argument("contact_id", type=int)
@click.option("--yes", is_flag=True, help="Confirm: erasing cannot be undone.")
@click.option("--block-email", is_flag=True, help="Keep a hash of the email so imports and webhooks skip it.")
@with_appcontext
def privacy_erase(contact_id, yes, block_email):
    """Anonymise a contact for good, keeping its orders without a name (needs --yes)."""
    from crm.models import Contact
    from crm.services.trust import privacy

    contact = db.session.get(Contact, contact_id)
    if contact is None:
        raise click.ClickException(f"There is no contact #{contact_id}.")
    if not yes:
        raise click.ClickException(f"Erasing contact #{contact_id} cannot be undone; run again with --yes to do it.")
    result = privacy.erase_contact(contact, None, block_email=block_email)
    db.session.commit()
    if result.already_erased:
        click.echo(f"Contact #{contact_id} was already erased; nothing changed.")
        return
    click.echo(f"Erased contact #{contact_id}: {result.interactions} interactions and {result.tasks} to-dos "
               f"de-identified, {result.audit_entries} audit entries scrubbed"
               + ("; the email is blocked." if result.email_blocked else "."))


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
    import os
    import signal
    import sys

    from crm.services.orders.importing import run as importing

    def _stopped(signum, _frame):
        # SIGTERM ends the command through the import's own error path, which marks the run
        # failed (the batches done are kept) instead of leaving it "running".
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _stopped)

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
    from flask_babel import force_locale

    from crm.views.import_text import summary_lines  # the one wording of a run's summary, here in English

    with force_locale("en"):
        for line in summary_lines(run):
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
                from crm.services.shared.csv_safe import write_csv

                write_csv(out, importing.rejection_rows(run.id), importing.REJECTION_COLUMNS)
            click.echo(f"All {rejected} rejected rows are in {rejected_csv}.")
        else:
            click.echo(f"All {rejected} rejected rows: the Imports page (/imports/{run.id}) has them as CSV, "
                       "or run again with --rejected-csv FILE.")


@click.group("email")
def email_group():
    """Send queued email, read bounces, or send a test message."""


@email_group.command("send")
@click.option("--limit", type=int, default=1000, show_default=True, help="At most this many messages in this run.")
@with_appcontext
def email_send(limit):
    """Send the queued messages that are due now (what the worker does), and print the counts."""
    from crm.services.email import sending

    counts = sending.deliver_due(limit=limit)
    db.session.commit()
    click.echo(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "Nothing to send.")


@email_group.command("bounces")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def email_bounces(files):
    """Read bounce messages (raw RFC 5322 files, one DSN each) and mark their messages and addresses."""
    from crm.services.email import bounces

    for path in files:
        result = bounces.process(path.read_bytes())
        db.session.commit()
        if result.kind is None:
            click.echo(f"{path}: nothing done. {result.note}")
        else:
            click.echo(f"{path}: message #{result.message_id} to {result.address} bounced ({result.kind})"
                       + ("; the address is suppressed." if result.suppressed else "."))


@email_group.command("test")
@click.argument("to")
@with_appcontext
def email_test(to):
    """Send a test message to TO and print the server's exact answer."""
    from crm.services.email import sending

    accepted, answer = sending.send_test(to)
    click.echo(answer)
    if not accepted:
        raise SystemExit(1)


@click.command("worker")
@click.option("--burst", is_flag=True,
              help="Run every job due now (and scheduled jobs whose time has come), then exit.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 32),
              help="Jobs run at once (threads).")
@click.option("--shutdown-timeout", default=30.0, show_default=True, type=float,
              help="On SIGTERM, seconds to let running jobs finish before they are stopped and queued again.")
@with_appcontext
def worker_command(burst, workers, shutdown_timeout):
    """Run the background jobs and schedules until stopped (SIGTERM, Ctrl-C), or once with --burst."""
    import logging

    from crm.services.jobs import queue, worker

    app = current_app._get_current_object()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The jobs push their own app context per run; this command's context stays out of their way.
    db.session.remove()
    where = queue.description(app.config, app.instance_path)
    if burst:
        count = worker.run_burst(app)
        click.echo(f"Ran {count} job{'' if count == 1 else 's'} from the queue ({where}).")
        return
    click.echo(f"Worker started on the queue in the {where}; stop it with Ctrl-C or SIGTERM.", err=True)
    worker.run_consumer(app, workers=workers, shutdown_timeout=shutdown_timeout)


@click.group("flows")
def flows_group():
    """Retention emails that send themselves (the flows on Settings → Rules)."""


@flows_group.command("run")
@click.option("--as-of", "now", callback=_as_of, metavar="DATE",
              help="Run the flows as at this date (noon UTC) or UTC time instead of now.")
@with_appcontext
def flows_run(now):
    """Re-check, pace and queue the retention emails that are due (the worker sends them)."""
    from crm.services.flows import runner

    summary = runner.run(now)
    db.session.commit()
    click.echo(f"Flows: {summary}.")


@click.command("rebuild-summaries")
@with_appcontext
def rebuild_summaries_command():
    """Recompute the dashboard's summary tables from the orders and the stage changes, report any drift and fix it."""
    import time

    from crm.services.insight import summaries

    started = time.perf_counter()
    drift = summaries.rebuild(medians=True)
    db.session.commit()
    click.echo(f"{drift.said()} ({time.perf_counter() - started:.1f} s)")
    for example in drift.examples:
        click.echo(f"  {example}")


def register_commands(app: Flask) -> None:
    """Add the shop's commands to the app's CLI."""
    # One line per command; keep the list sorted so parallel additions merge cleanly.
    for command in (
        api_token_group,
        backup_command,
        create_user_command,
        demo_command,
        email_group,
        flows_group,
        import_command,
        predict_command,
        privacy_group,
        rebuild_summaries_command,
        refresh_command,
        restore_command,
        worker_command,
    ):
        app.cli.add_command(command)

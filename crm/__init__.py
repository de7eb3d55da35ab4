"""A lightweight, self-hosted CRM for small online shops."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: dict | None = None) -> Flask:
    """Return a configured app: defaults, instance/config.py, environment, then `config`."""
    # Imported here so that pure modules (crm.services.orders.importing) load without Flask.
    import os

    from flask import Flask

    # CRM_INSTANCE_PATH moves the instance folder (database, queue, uploads, backups) elsewhere.
    app = Flask(__name__, instance_relative_config=True, instance_path=os.environ.get("CRM_INSTANCE_PATH") or None)
    from crm import config as config_module

    config_module.load(app, config)

    from crm.database import configure_engine
    from crm.extensions import csrf, db, htmx, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    config_module.warn_about_per_process_limits(app)
    with app.app_context():
        configure_engine(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"], app.config["SQLITE_MMAP_BYTES"])
        from crm.services import shop

        shop.current()  # read once at start (a database never migrated gives the config's values)
        db.session.remove()

    from crm.services.rules import engine

    engine.connect()  # stages, scores and to-dos follow every write (crm.services.shared.signals)

    from crm.services import jobs
    from crm.services.jobs import maintenance

    jobs.init_app(app)
    maintenance.connect()  # orders that come in on their own queue the shop-wide figures

    from crm import views

    views.init_app(app)

    from crm.cli import register_commands

    register_commands(app)
    return app


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"

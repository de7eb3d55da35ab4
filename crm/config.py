"""Configuration: defaults, then instance/config.py, then environment variables."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from crm.database import MMAP_BYTES

DEFAULTS = {
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "SQLITE_BUSY_TIMEOUT_MS": 30_000,
    # How much of the SQLite file each connection reads through memory mapping instead of a read
    # call per page (PRAGMA mmap_size; 0 turns it off). Address space, not memory: the pages are
    # the operating system's file cache, shared by every connection and worker.
    "SQLITE_MMAP_BYTES": MMAP_BYTES,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "crm_session",
    "PERMANENT_SESSION_LIFETIME": 60 * 60 * 12,
    "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
    # WTForms' own messages ("This field is required.") in the page's language: Flask-WTF loads
    # WTForms' catalogue (wtforms/locale/<lang>) for the locale crm.views.languages picks.
    "WTF_I18N_ENABLED": True,
    "MAX_CONTENT_LENGTH": 50 * 1024 * 1024,
    # Stated per app: Flask-Limiter's extension object otherwise keeps the last app's choice.
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",
    # If Redis goes away, count per process in memory rather than fail every request.
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "RATELIMIT_HEADERS_ENABLED": True,
    "LOGIN_RATE_LIMIT": "10 per minute",  # failed sign-ins per address
    "LOGIN_ACCOUNT_RATE_LIMIT": "10 per 15 minutes",  # failed sign-ins per account, whatever the address
    "WEBHOOK_PING_RATE_LIMIT": "10 per minute",  # unsigned WooCommerce pings per address
    "WEBHOOK_REFUSAL_LIMIT": "60 per minute",  # refused (unsigned, forged) webhook requests per address
    "API_RATE_LIMIT": "600 per minute",
    "PROXY_FIX": 0,  # number of proxies in front of the app to trust X-Forwarded-* from
    "SHOP_NAME": "My shop",
    "SHOP_TIMEZONE": "UTC",
    "SHOP_CURRENCY": "EUR",
    "SHOP_LANGUAGE": "en",  # the shop's default language until it saves its own (Settings → Shop)
    "PAGE_SIZE": 50,
    "RETENTION_MONTHS": 36,  # months without an order or interaction before a contact is up for review
    "SEGMENT_QUERY_LIMIT_MS": 5_000,  # a segment's count, preview or members query is stopped after this long
    # The job queue: a SQLite file in the instance folder unless REDIS_URL (CRM_REDIS_URL) is set.
    "JOBS_SQLITE_PATH": None,  # default instance/jobs.sqlite3
    "JOBS_QUEUE_NAME": "crm",  # the queue's name inside its storage (one per app or test)
    "JOBS_STALE_AFTER": 600,  # seconds without news before another host's running job counts as interrupted
    "JOBS_EXTRA_MODULES": [],  # modules with jobs besides crm.services.jobs.registry's (tests use it)
    "JOBS_BURST_SCHEDULES": True,  # `crm worker --burst` also runs the scheduled jobs whose time has come
    "JOBS_FIGURES_DELAY": 600,  # seconds after an order arrives before the shop-wide figures are worked out
}


def database_url(raw: str | None, instance_path: str) -> str:
    """Return the SQLAlchemy URL for DATABASE_URL, or the instance SQLite file."""
    if not raw:
        return "sqlite:///" + str(Path(instance_path) / "crm.sqlite3")
    # Hosting platforms hand out postgres:// URLs; psycopg 3 is the driver we ship.
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix):]
    return raw


def instance_secret_key(instance_path: str) -> str:
    """Return the secret key kept in the instance folder, creating it on first run."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key)
    path.chmod(0o600)
    return key


def load(app, overrides: dict | None = None) -> None:
    """Fill app.config in order: defaults, instance/config.py, environment, then overrides."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    # CRM_SHOP_TIMEZONE=Europe/Berlin sets SHOP_TIMEZONE, values parsed as JSON when they are.
    app.config.from_prefixed_env(prefix="CRM")
    if os.environ.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    if os.environ.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    if overrides:
        app.config.update(overrides)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url(
        app.config.get("SQLALCHEMY_DATABASE_URI") or app.config.get("DATABASE_URL"),
        app.instance_path,
    )
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app.instance_path)


def server_workers(argv: list[str] | None = None, environ: dict | None = None) -> int:
    """Return how many worker processes the server was started with (1 when not gunicorn)."""
    import shlex
    import sys

    argv = list(sys.argv if argv is None else argv)
    environ = os.environ if environ is None else environ
    if not argv or "gunicorn" not in Path(argv[0]).name:
        return 1
    args = shlex.split(environ.get("GUNICORN_CMD_ARGS", "")) + argv[1:]
    workers = environ.get("WEB_CONCURRENCY", "1")
    for index, arg in enumerate(args):
        if arg in ("-w", "--workers") and index + 1 < len(args):
            workers = args[index + 1]
        elif arg.startswith("--workers="):
            workers = arg.split("=", 1)[1]
        elif arg.startswith("-w") and arg[2:].isdigit():
            workers = arg[2:]
    return int(workers) if str(workers).isdigit() else 1


def warn_about_per_process_limits(app, workers: int | None = None) -> bool:
    """Say loudly when rate limits are counted per process (memory://) by several workers:
    each worker then allows the full budget, so sign-in guessing gets `workers` times the limit."""
    workers = server_workers() if workers is None else workers
    if workers <= 1 or not str(app.config.get("RATELIMIT_STORAGE_URI", "")).startswith("memory://"):
        return False
    message = (f"WARNING: {workers} workers count rate limits each in their own memory (RATELIMIT_STORAGE_URI="
               f"memory://), so every limit is {workers} times looser. Set RATELIMIT_STORAGE_URI="
               "redis://127.0.0.1:6379 to share one count.")
    app.logger.warning(message)
    import sys

    print(message, file=sys.stderr)
    return True

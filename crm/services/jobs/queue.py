"""The one Huey instance, whose storage `init_app` points at the app's queue.

Default storage: a SQLite file in the instance folder (JOBS_SQLITE_PATH, default
instance/jobs.sqlite3). With REDIS_URL (environment CRM_REDIS_URL) the queue lives in Redis, so
several app servers and workers share it. JOBS_QUEUE_NAME (default "crm") names the queue inside
the storage: two apps (or two tests) with different names never see each other's jobs or locks.
"""
from __future__ import annotations

from pathlib import Path

from huey import Huey
from huey.storage import BaseStorage, RedisStorage, SqliteStorage


class NotConfigured(RuntimeError):
    """The queue was used before an app configured it."""


class _UnconfiguredStorage(BaseStorage):
    """Storage until init_app runs: any use says so instead of queueing somewhere surprising."""

    blocking = False

    def __getattribute__(self, name):
        if name in ("name", "blocking", "close", "__class__", "__dict__", "storage_kwargs"):
            return object.__getattribute__(self, name)
        raise NotConfigured("The job queue is not configured: create the app (crm.create_app) first.")

    def close(self):
        return False


# results=False: nothing reads Huey's result store (the job_runs table records each run), so
# it never grows. utc=True: schedules are validated against UTC; jobs convert to SHOP_TIMEZONE.
huey = Huey("crm", results=False, utc=True, storage_class=_UnconfiguredStorage)


def storage_for(config: dict, instance_path: str) -> BaseStorage:
    """Return the Huey storage the app's configuration asks for."""
    name = config.get("JOBS_QUEUE_NAME") or "crm"
    redis_url = config.get("REDIS_URL")
    if redis_url:
        return RedisStorage(name, url=str(redis_url))
    path = config.get("JOBS_SQLITE_PATH") or str(Path(instance_path) / "jobs.sqlite3")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteStorage(name, filename=str(path), timeout=30)


def configure(config: dict, instance_path: str) -> None:
    """(Re)create the queue's storage for this app's configuration."""
    old = huey.storage
    huey.storage = storage_for(config, instance_path)
    huey.name = huey.storage.name
    try:
        old.close()
    except Exception:  # noqa: BLE001 - closing the previous app's connection is best effort
        pass


def description(config: dict, instance_path: str) -> str:
    """Return where the queue lives, for people (no password)."""
    redis_url = config.get("REDIS_URL")
    if redis_url:
        from urllib.parse import urlsplit

        parts = urlsplit(str(redis_url))
        host = parts.hostname or "localhost"
        return f"Redis at {host}:{parts.port or 6379}{parts.path or '/0'}"
    return f"SQLite file {config.get('JOBS_SQLITE_PATH') or Path(instance_path) / 'jobs.sqlite3'}"

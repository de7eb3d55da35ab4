"""The app factory reads its configuration in order and finds its database."""
from crm import create_app
from crm.config import database_url


def test_postgres_urls_get_the_psycopg_driver():
    assert database_url("postgres://u@h/db", "/x") == "postgresql+psycopg://u@h/db"
    assert database_url("postgresql://u@h/db", "/x") == "postgresql+psycopg://u@h/db"
    assert database_url("sqlite:////tmp/a.db", "/x") == "sqlite:////tmp/a.db"


def test_default_database_is_a_sqlite_file_in_the_instance_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_SQLALCHEMY_DATABASE_URI", raising=False)
    app = create_app({"TESTING": True, "SECRET_KEY": "x"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{app.instance_path}/crm.sqlite3"


def test_environment_overrides_instance_config_which_overrides_defaults(monkeypatch, tmp_path):
    (tmp_path / "config.py").write_text("SHOP_NAME = 'From file'\nSHOP_CURRENCY = 'GBP'\n")
    monkeypatch.setenv("CRM_SHOP_NAME", "From env")
    monkeypatch.setenv("DATABASE_URL", "postgres://shop@db/crm")
    monkeypatch.setenv("SECRET_KEY", "env-secret")
    import crm

    monkeypatch.setattr(crm, "_migrations_dir", lambda: tmp_path)
    from flask import Flask

    original = Flask.__init__

    def with_instance(self, *args, **kwargs):
        kwargs["instance_path"] = str(tmp_path)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Flask, "__init__", with_instance)
    app = create_app()
    assert app.config["SHOP_NAME"] == "From env"
    assert app.config["SHOP_CURRENCY"] == "GBP"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://shop@db/crm"
    assert app.config["SECRET_KEY"] == "env-secret"


def test_a_secret_key_is_made_once_and_kept_private(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    from crm.config import instance_secret_key

    first = instance_secret_key(str(tmp_path))
    assert len(first) == 64
    assert instance_secret_key(str(tmp_path)) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0

"""The PostgreSQL server the ledger's tests use (tests/support/postgres.py): a real PostgreSQL 15+,
on 127.0.0.1 only, behind a password, with an empty database of its own for each test."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.support import postgres


def _one(url: str, query: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_the_server_is_postgresql_15_or_newer(postgres_url: str) -> None:
    """The server is PostgreSQL, version 15 or newer."""
    assert str(_one(postgres_url, "SELECT version()")).startswith("PostgreSQL ")
    assert int(str(_one(postgres_url, "SHOW server_version_num"))) >= 150000


def test_the_server_listens_on_127_0_0_1_only(postgres_url: str) -> None:
    """The server listens on 127.0.0.1 and nowhere else, and the URL reaches it there."""
    assert urlsplit(postgres_url).hostname == "127.0.0.1"
    assert _one(postgres_url, "SHOW listen_addresses") == "127.0.0.1"
    assert str(_one(postgres_url, "SELECT inet_server_addr()")) == "127.0.0.1"


def test_a_login_needs_the_password(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A login without the password, or with a wrong one, is refused; the URL's own is taken."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    url = urlsplit(postgres_url)
    assert url.username == "tokentrace"
    assert url.password
    login = make_conninfo(
        host=url.hostname,
        port=url.port,
        user=url.username,
        dbname=url.path.lstrip("/"),
        passfile=str(tmp_path / "no-pgpass"),  # nor a password from the user's ~/.pgpass
    )
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(login).close()
    refused = 'password authentication failed for user "tokentrace"'
    with pytest.raises(psycopg.OperationalError, match=refused):
        psycopg.connect(login, password=url.password + "x").close()
    with psycopg.connect(login, password=url.password) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("tokentrace",)


def test_each_database_is_new_and_empty(postgres_url: str, postgres_server: str) -> None:
    """Two databases made for tests are distinct: a table made in one is absent from the other."""
    with postgres.database(postgres_server) as other:
        assert other != postgres_url
        for url in (postgres_url, other):
            assert str(_one(url, "SELECT current_database()")).startswith("tt_")
            assert _one(url, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace") == 0
        with psycopg.connect(postgres_url) as conn:
            conn.execute("CREATE TABLE probe (id integer)")
        assert _one(postgres_url, "SELECT to_regclass('probe')::text") == "probe"
        assert _one(other, "SELECT to_regclass('probe')::text") is None


def test_a_database_is_dropped_after_its_test_with_its_sessions(postgres_server: str) -> None:
    """A test's database is dropped when it ends, even while a session is still on it."""
    with postgres.database(postgres_server) as url:
        name = urlsplit(url).path.lstrip("/")
        left_open = psycopg.connect(url)
    try:
        assert _one(postgres_server, f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == 0
        with pytest.raises(psycopg.OperationalError):
            left_open.execute("SELECT 1")
    finally:
        left_open.close()

"""``botranks strategy create --base-currency`` (issue 23): the strategy is created in that currency
(any case typed), USD without the flag, and a code that is not an ISO 4217 currency in tender is a
usage error naming the flag, before the database is touched."""

from __future__ import annotations

import json
from uuid import UUID

import pytest

from libs.infra.db import Database
from tools import cli

pytestmark = pytest.mark.integration


@pytest.fixture
def database(make_database, monkeypatch):
    url = make_database()
    monkeypatch.setenv("BOTRANKS_DATABASE_URL", url)
    monkeypatch.setattr(cli, "configure_logging", lambda *args, **kwargs: None)
    db = Database(url, pool_size=1).create_tables()
    yield db
    db.close()


def _create(capsys, *flags: str) -> UUID:
    cli.main(["strategy", "create", *flags])
    return UUID(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["strategy_id"])


def test_the_flag_sets_the_base_currency_and_usd_is_the_default(database, capsys):
    euro = _create(capsys, "--name", "euro", "--base-currency", "eur")
    yen = _create(capsys, "--name", "yen", "--base-currency", "JPY")
    dollar = _create(capsys, "--name", "dollar")
    assert [database.identity.profile(s).base_currency for s in (euro, yen, dollar)] == ["EUR", "JPY", "USD"]


@pytest.mark.parametrize("code", ["XYZ", "EURO", "", "XAU"])
def test_a_bad_code_is_a_usage_error_naming_the_flag(database, capsys, code):
    with pytest.raises(SystemExit) as exit:
        cli.main(["strategy", "create", "--name", "bad", "--base-currency", code])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and "argument --base-currency:" in err and "ISO 4217" in err, err
    assert database.identity.all_strategies() == []  # nothing created

"""The people-facing commands of botranks_client/cli/ without a server: reading and mapping a
broker's file, the ids of rows without an order id, rejected rows, the 422 search, CLI errors and
the NAV as CSV (a fake client stands in for botranks_client.Client)."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from uuid import UUID

import pytest

from botranks_client.cli import common
from botranks_client.cli.common import CliError
from botranks_client.cli.importer import ImportSummary, import_orders, row_reason
from botranks_client.cli.reads import write_nav_csv
from botranks_client.cli.rows import ImportOptions, RowError, RowIds, import_options, read_rows, to_order
from botranks_client.errors import TransportError, Unauthorized, Unprocessable
from botranks_domain.nav import NavRow
from botranks_domain.views import NavSeries
from tools import cli

STRATEGY = "6f1c1e0a-3d0b-4d7e-9a55-6b2f3f6c0b11"
HEADER = "symbol,side,quantity,price,fees,executed_at,order_id"


def options(**flags) -> ImportOptions:
    args = SimpleNamespace(
        file=flags.pop("file", "x.csv"),
        format=None,
        map=None,
        side_map=None,
        time_format=None,
        tz="UTC",
        delimiter=",",
        skip_lines=0,
        parallel=4,
    )
    for key, value in flags.items():
        setattr(args, key, value)
    return import_options(args)


def rows(text: str, opts: ImportOptions | None = None) -> list[tuple[int, dict]]:
    return list(read_rows(io.BytesIO(text.encode()), opts or options()))


def orders(text: str, opts: ImportOptions | None = None) -> list[tuple[int, object]]:
    """(line, OrderIn or the RowError's message) for every row of ``text``."""
    opts = opts or options()
    ids, out = RowIds(), []
    for line, row in rows(text, opts):
        try:
            out.append((line, to_order(row, ids.external_id(row), opts)))
        except RowError as exc:
            out.append((line, str(exc)))
    return out


def ids_of(text: str, opts: ImportOptions | None = None) -> list[str]:
    return [o.external_order_id for _, o in orders(text, opts)]


# ---------------------------------------------------------------- reading and mapping


def test_default_columns_line_numbers_and_empty_optional_fields():
    text = (
        "\n".join(
            [
                HEADER,  # 1
                "AAPL,buy,100,189.42,1.5,2026-04-20T14:31:22Z,tb-1",  # 2
                "",  # 3: blank, skipped
                'msft,SELL,2.5,,,"2026-04-20 15:00:00",',  # 4: price and fees empty, no id
                '"BTC-USD",Buy,0.001,"64000",0,"2026-04-20T16:00:00+02:00",x',  # 5
            ]
        )
        + "\n"
    )
    got = orders(text)
    assert [line for line, _ in got] == [2, 4, 5]
    first, second, third = (o for _, o in got)
    assert (first.symbol, first.side, first.quantity, first.price, first.fees) == (
        "AAPL",
        "buy",
        Decimal("100"),
        Decimal("189.42"),
        Decimal("1.5"),
    )
    assert first.external_order_id == "tb-1"
    assert first.executed_at == datetime(2026, 4, 20, 14, 31, 22, tzinfo=UTC)
    assert (second.symbol, second.side, second.price, second.fees) == ("MSFT", "sell", None, Decimal(0))
    assert second.executed_at == datetime(2026, 4, 20, 15, tzinfo=UTC)  # naive: UTC
    assert second.external_order_id.startswith("imp-")
    assert third.executed_at == datetime(2026, 4, 20, 14, tzinfo=UTC)  # the offset converted
    assert isinstance(third.quantity, Decimal) and str(third.quantity) == "0.001"


def test_a_quoted_field_over_two_lines_keeps_the_line_numbers_right():
    text = 'symbol,side,quantity,price,note\nAAPL,buy,1,10,"two\nlines"\nAAPL,buy,x,10,\n'
    assert orders(text)[1] == (4, "quantity: not a number ('x')")


def test_column_and_side_maps_time_format_and_zone():
    text = (
        "Ticker,Action,Qty,Fill Price,Commission,Trade Time,Ref,Account\n"
        "aapl,BOT,10,189.5,0.35,04/20/2026 10:31:22,r1,U1\n"
        "AAPL,SLD,10,190,0.35,04/20/2026 15:59:00,r2,U1\n"
    )
    opts = options(
        map=[
            "symbol=Ticker",
            "side=Action",
            "quantity=Qty",
            "price=Fill Price",
            "fees=Commission",
            "executed_at=Trade Time",
            "order_id=Ref",
        ],
        side_map=["BOT=buy", "SLD=sell"],
        time_format="%m/%d/%Y %H:%M:%S",
        tz="America/New_York",
    )
    (_, buy), (_, sell) = orders(text, opts)
    assert (buy.side, sell.side, buy.external_order_id, sell.fees) == ("buy", "sell", "r1", Decimal("0.35"))
    assert buy.executed_at == datetime(2026, 4, 20, 14, 31, 22, tzinfo=UTC)  # EDT is UTC-4
    assert sell.price == Decimal("190")


def test_headers_match_in_any_case_and_external_order_id_is_an_order_id_column():
    ((_, order),) = orders("Symbol,SIDE,Quantity,Price,External_Order_Id\nAAPL,buy,1,10,abc\n")
    assert order.external_order_id == "abc"


def test_a_header_without_a_required_or_mapped_column_stops_before_anything_is_read():
    with pytest.raises(CliError, match=r"symbol \('symbol'\)"):
        rows("ticker,side,quantity\nAAPL,buy,1\n")
    with pytest.raises(CliError, match=r"order_id \('Ref'\)"):
        rows(HEADER + "\n", options(map=["order_id=Ref"]))


def test_bad_flags_are_one_line_errors():
    with pytest.raises(CliError, match="unknown field"):
        options(map=["ticker=Symbol"])
    with pytest.raises(CliError, match="KEY=VALUE"):
        options(map=["symbol"])
    with pytest.raises(CliError, match="buy or sell"):
        options(side_map=["BOT=long"])
    with pytest.raises(CliError, match="time zone"):
        options(tz="Mars/Olympus")
    with pytest.raises(CliError, match="stdin"):
        options(file="-")
    assert options(file="fills.JSONL").format == "jsonl"
    assert options(file="fills.txt", format="jsonl").format == "jsonl"


def test_jsonl_keeps_numbers_exact_and_reports_bad_lines():
    text = "\n".join(
        [
            '{"symbol": "AAPL", "side": "buy", "quantity": 0.1, "price": 90071992547409.93, "executed_at":'
            ' "2026-04-20T14:31:22Z", "external_order_id": "j-1", "extra": [1]}',
            "",
            "not json",
            '{"symbol": "AAPL", "side": "buy", "quantity": "3", "price": 1e2}',
        ]
    )
    got = orders(text, options(file="f.jsonl"))
    assert [line for line, _ in got] == [1, 3, 4]
    assert got[0][1].quantity == Decimal("0.1") and got[0][1].price == Decimal("90071992547409.93")
    assert got[0][1].external_order_id == "j-1"
    assert got[1][1].startswith("not a JSON object")
    assert got[2][1].quantity == Decimal(3) and got[2][1].price == Decimal(100)


def test_bad_rows_say_why():
    text = "\n".join(
        [
            HEADER,
            "AAPL,buy,abc,1,,,",  # 2
            "AAPL,hold,1,1,,,",  # 3
            "AA PL,buy,1,1,,,",  # 4
            "AAPL,buy,-5,1,,,",  # 5
            "AAPL,buy,1,0,,,",  # 6
            "AAPL,buy,1,1,-1,,",  # 7
            "AAPL,buy,1,1,,2026-13-01,",  # 8
            "AAPL,buy,1,1,,2999-01-01T00:00:00Z,",  # 9
            ",buy,1,1,,,",  # 10
            "AAPL,buy,1,1,,," + "x" * 129,  # 11
            "AAPL,buy,1,1.0000000000000000001,,,",  # 12
        ]
    )
    reasons = dict(orders(text))
    assert reasons[2] == "quantity: not a number ('abc')"
    assert "'hold' is not buy or sell" in reasons[3] and "--side-map hold=" in reasons[3]
    assert "Invalid symbol 'AA PL'" in reasons[4]
    assert reasons[5] == "`quantity` must be > 0"
    assert reasons[6] == "`price` must be > 0"
    assert reasons[7] == "`fees` must be >= 0"
    assert "'2026-13-01' is not a time" in reasons[8]
    assert "in the future" in reasons[9]
    assert reasons[10] == "symbol: missing (column 'symbol')"
    assert "length <= 128" in reasons[11]
    assert "at most 18 digits" in reasons[12]


# ---------------------------------------------------------------- ids of rows without an order id


FILLS = (
    "\n".join(
        [
            HEADER,
            "AAPL,buy,100,189.42,1,2026-04-20T14:31:22Z,",
            "AAPL,buy,100,189.42,1,2026-04-20T14:31:22Z,",  # the same fill twice: two orders
            "MSFT,sell,5,420.10,0,2026-04-20T15:00:00Z,",
            "AAPL,buy,100,189.42,1,2026-04-20T14:31:22Z,own-id",
        ]
    )
    + "\n"
)


def test_derived_ids_are_stable_across_runs_and_separate_identical_rows():
    first, again = ids_of(FILLS), ids_of(FILLS)
    assert first == again
    assert len(set(first)) == 4 and first[3] == "own-id"
    assert all(i.startswith("imp-") and len(i) == 36 for i in first[:3])


def test_derived_ids_do_not_depend_on_line_numbers_column_order_extra_columns_or_flags():
    base = ids_of(FILLS)
    preamble = "Trades for account U1234567\nGenerated 2026-04-21\n" + FILLS
    assert ids_of(preamble, options(skip_lines=2)) == base
    lines = FILLS.splitlines()
    assert sorted(ids_of("\n".join([lines[0], lines[3], lines[1], "", lines[2], lines[4]]))) == sorted(base)
    reordered = "executed_at,fees,price,quantity,side,symbol,order_id,account\n" + "".join(
        ",".join(reversed(line.split(",")[:6])) + f",{line.split(',')[6]},U1\n" for line in lines[1:]
    )
    assert ids_of(reordered) == base
    # the ids identify the file's rows, not their reading: a corrected --tz does not re-import a file
    assert ids_of(FILLS, options(tz="America/New_York")) == base


def test_appending_rows_keeps_the_earlier_rows_ids():
    base = ids_of(FILLS)
    grown = ids_of(FILLS + "AAPL,buy,100,189.42,1,2026-04-20T14:31:22Z,\nKO,buy,1,60,0,2026-04-21T14:00:00Z,\n")
    assert grown[:4] == base and len(set(grown)) == 6  # a third identical fill is a new order


# ---------------------------------------------------------------- sending, the 422 search


class FakeClient:
    """submit_orders as the server answers it: a batch with a bad order is refused whole (422)."""

    def __init__(self, bad_symbols=(), name_index=True, known=()):
        self.bad = set(bad_symbols)
        self.name_index = name_index
        self.known = set(known)
        self.calls: list[int] = []

    def submit_orders(self, batch):
        batch = list(batch)
        self.calls.append(len(batch))
        for i, o in enumerate(batch):
            if o.symbol in self.bad:
                where = f" (orders[{i}])" if self.name_index else ""
                raise Unprocessable(422, f"No market data available for {o.symbol} at 2026-04-20T00:00:00Z{where}")
        accepted = [o for o in batch if o.external_order_id not in self.known]
        self.known.update(o.external_order_id for o in batch)
        return SimpleNamespace(accepted=accepted, duplicates=[o for o in batch if o not in accepted])


def _file(n: int, bad: dict[int, str] | None = None) -> bytes:
    """``n`` rows (row k on line k + 2), some with a symbol the fake server refuses."""
    bad = bad or {}
    lines = [HEADER] + [f"{bad.get(k, 'AAPL')},buy,{k + 1},10,,2026-04-20T14:00:00Z," for k in range(n)]
    return ("\n".join(lines) + "\n").encode()


def run_import(data: bytes, client, opts: ImportOptions | None = None, parallel: int = 1) -> ImportSummary:
    return import_orders(io.BytesIO(data), opts or options(), client, ImportSummary("f.csv", "csv"), parallel=parallel)


@pytest.mark.parametrize("name_index", [True, False])
@pytest.mark.parametrize("parallel", [1, 4])
def test_rows_the_server_refuses_are_found_and_reported_and_the_rest_sent(name_index, parallel):
    client = FakeClient({"NODATA", "GONE"}, name_index=name_index)
    summary = run_import(_file(1200, {7: "NODATA", 640: "GONE", 641: "NODATA"}), client, parallel=parallel)
    assert summary.rows == 1200 and summary.accepted == 1197 and summary.duplicates == 0
    assert [r["line"] for r in sorted(summary.rejected, key=lambda r: r["line"])] == [9, 642, 643]
    assert all("No market data available" in r["reason"] and "orders[" not in r["reason"] for r in summary.rejected)
    assert max(client.calls) == 500 and summary.requests == len(client.calls)
    if name_index:  # the index named: one more request per bad row
        assert len(client.calls) == 3 + 3
    else:  # bisection: a few dozen requests, not one per row
        assert len(client.calls) < 60


def test_invalid_rows_are_not_sent_and_a_rerun_is_all_duplicates():
    data = _file(10, {2: "BAD SYMBOL"}).replace(b"buy,5,", b"buy,-5,")
    client = FakeClient()
    first = run_import(data, client)
    assert (first.accepted, first.duplicates) == (8, 0)
    assert sorted((r["line"], r["reason"][:18]) for r in first.rejected) == [
        (4, "Invalid symbol 'BA"),
        (6, "`quantity` must be"),
    ]
    assert client.calls == [8]
    again = run_import(data, client)
    assert (again.accepted, again.duplicates, len(again.rejected)) == (0, 8, 2)
    assert again.as_dict()["rejected"] == first.as_dict()["rejected"]


def test_the_file_is_streamed_one_batch_at_a_time():
    data = _file(1500)
    stream = io.BytesIO(data)
    seen: list[tuple[int, int]] = []

    class Watching(FakeClient):
        def submit_orders(self, batch):
            seen.append((len(batch), stream.tell()))
            return super().submit_orders(batch)

    import_orders(stream, options(), Watching(), ImportSummary("f.csv", "csv"))
    assert [n for n, _ in seen] == [500, 500, 500]
    assert seen[0][1] < len(data) // 2  # the first batch went out long before the end of the file was read


# ---------------------------------------------------------------- the commands


NAV = NavSeries(
    strategy_id=UUID(STRATEGY),
    series=[
        NavRow(date(2026, 4, 20), Decimal("981058.00"), Decimal("18942"), Decimal("1000000.00"), Decimal("1000000")),
        NavRow(date(2026, 4, 21), Decimal("981058.00"), Decimal("19105.0"), Decimal("1000163.0"), Decimal(0)),
    ],
)


def test_nav_csv_has_the_servers_columns_and_exact_decimals():
    out = io.StringIO()
    write_nav_csv(NAV, out)
    assert out.getvalue() == (
        "date,cash,market_value,total_equity,external_flow\n"
        "2026-04-20,981058.00,18942,1000000.00,1000000\n"
        "2026-04-21,981058.00,19105.0,1000163.0,0\n"
    )


class ReadClient:
    def __init__(self, error: Exception | None = None):
        self.error = error
        self.asked: list[tuple] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def nav(self, from_=None, to=None):
        self.asked.append(("nav", from_, to))
        if self.error:
            raise self.error
        return NAV


@pytest.fixture
def env(monkeypatch):
    # cli.main configures structlog to print to the sys.stdout of the moment (capsys's): not for later tests
    monkeypatch.setattr(cli, "configure_logging", lambda *args, **kwargs: None)
    monkeypatch.setenv("FQ_API_KEY", "fq_live_test")
    monkeypatch.setenv("FQ_STRATEGY_ID", STRATEGY)
    monkeypatch.setenv("BOTRANKS_URL", "http://127.0.0.1:9")
    client_log = logging.getLogger("botranks_client")  # the commands set its level and handlers
    level, handlers = client_log.level, list(client_log.handlers)
    yield monkeypatch
    client_log.setLevel(level)
    client_log.handlers[:] = handlers


def _use(monkeypatch, client) -> list:
    made: list = []

    def make(conn, **options):
        made.append((conn, options))
        return client

    monkeypatch.setattr(common, "make_client", make)
    return made


def test_nav_command_csv_on_stdout_from_the_environment(env, capsys):
    client = ReadClient()
    made = _use(env, client)
    cli.main(["nav", "--csv", "--from", "2026-04-01"])
    assert capsys.readouterr().out.startswith("date,cash,market_value,total_equity,external_flow\n2026-04-20,")
    assert client.asked == [("nav", date(2026, 4, 1), None)]
    conn = made[0][0]
    assert (conn.url, conn.api_key, conn.strategy_id) == ("http://127.0.0.1:9", "fq_live_test", STRATEGY)


def test_nav_command_json_and_table(env, capsys):
    _use(env, ReadClient())
    cli.main(["nav", "--json", "--url", "http://other:8000/", "--strategy", STRATEGY])
    body = json.loads(capsys.readouterr().out)
    assert body["series"][1] == {
        "date": "2026-04-21",
        "cash": 981058.00,
        "market_value": 19105.0,
        "total_equity": 1000163.0,
        "external_flow": 0,
    }
    cli.main(["nav"])
    table = capsys.readouterr().out
    assert "2026-04-21" in table and "1,000,163.00" in table


@pytest.mark.parametrize(
    "error, message",
    [
        (Unauthorized(401, "Invalid API key"), "the API key was refused (401: Invalid API key)"),
        (
            TransportError("GET /x: ConnectError", OSError("connection refused")),
            "cannot reach BotRanks at http://127.0.0.1:9 (connection refused): is `botranks up` running?",
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(env, capsys, error, message):
    _use(env, ReadClient(error))
    with pytest.raises(SystemExit) as exit:
        cli.main(["nav"])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.startswith(f"botranks: {message}") and err.count("\n") == 1
    assert "Traceback" not in err


def test_missing_key_or_strategy_exit_2(env, capsys):
    _use(env, ReadClient())
    env.delenv("FQ_API_KEY")
    with pytest.raises(SystemExit) as exit:
        cli.main(["state"])
    assert exit.value.code == 2 and capsys.readouterr().err == (
        "botranks: no API key: set FQ_API_KEY or pass --api-key\n"
    )
    with pytest.raises(SystemExit) as exit:
        cli.main(["performance", "--api-key", "k", "--strategy", "not-a-uuid"])
    assert exit.value.code == 2 and "must be a UUID" in capsys.readouterr().err


def test_import_command_json_summary_and_exit_code(env, tmp_path, capsys):
    path = tmp_path / "fills.csv"
    path.write_bytes(_file(5, {3: "NODATA"}))

    class Client(FakeClient):
        def __enter__(self):
            return self

        def state(self):
            return None

        def __exit__(self, *exc):
            return None

    client = Client({"NODATA"})
    made = _use(env, client)
    with pytest.raises(SystemExit) as exit:
        cli.main(["orders", "import", str(path), "--json"])
    assert exit.value.code == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows"], summary["accepted"], summary["duplicates"]) == (5, 4, 0)
    assert summary["rejected"] == [{"line": 5, "reason": "No market data available for NODATA at 2026-04-20T00:00:00Z"}]
    assert summary["rows_per_s"] > 0 and [options for _, options in made] == [
        {"max_retries": 2},
        {"timeout": 60.0, "read_your_writes": False},
    ]
    with pytest.raises(SystemExit) as exit:  # again: a no-op, the same row rejected
        cli.main(["orders", "import", str(path), "-q"])
    out = capsys.readouterr().out
    assert exit.value.code == 1
    assert "accepted             0" in out and "duplicates           4" in out
    assert "line 5: No market data available for NODATA" in out


def test_row_reason_drops_the_batch_index():
    assert row_reason("No market data available for X at 2026-04-20T00:00:00Z (orders[12])") == (
        "No market data available for X at 2026-04-20T00:00:00Z"
    )
    assert row_reason("`orders[3].executed_at` is more than 5 minutes in the future") == (
        "`executed_at` is more than 5 minutes in the future"
    )
    assert row_reason("Expected `str` - at `$.orders[0].symbol`") == "Expected `str` - at `symbol`"

"""The OpenAPI document both APIs serve says what the server enforces, and each API knows the other's
routes (a wrong method is 405 naming the methods of both). Built from the real apps, never served."""

from __future__ import annotations

import re
import uuid

import msgspec
import pytest

from botranks_domain import accounts, model
from libs.infra.settings import Settings
from libs.infra.surface import Surface
from services.command_api.app import create_app as command_app
from services.query_api.app import create_app as query_app

SID = str(uuid.uuid4())


@pytest.fixture(scope="module")
def surface() -> Surface:
    settings = Settings.from_env()
    return Surface([command_app(settings), query_app(settings)])


@pytest.fixture(scope="module")
def doc(surface) -> dict:
    return surface.document()


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


REQUEST_STRUCTS = [
    model.OrdersBatchIn,
    model.OrderIn,
    model.CashIn,
    model.SnapshotIn,
    model.PositionIn,
    accounts.Credentials,
    accounts.StrategyIn,
    accounts.ApiKeyIn,
]


@pytest.mark.parametrize("struct", REQUEST_STRUCTS, ids=lambda s: s.__name__)
def test_request_bodies_refuse_unknown_fields_as_the_server_does(doc, struct):
    schema = doc["components"]["schemas"][struct.__name__]
    assert struct.__struct_config__.forbid_unknown_fields and schema["additionalProperties"] is False
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({**_minimal(struct), "surprise": 1}, struct)


def _minimal(struct) -> dict:
    return {
        "OrdersBatchIn": {"orders": [{"symbol": "A", "side": "buy", "quantity": 1}]},
        "OrderIn": {"symbol": "A", "side": "buy", "quantity": 1},
        "CashIn": {"event_type": "fee", "amount": -1},
        "SnapshotIn": {"positions": []},
        "PositionIn": {"symbol": "A", "quantity": 0, "cost_basis": 0},
        "Credentials": {"email": "a@b.co", "password": "p" * 12},
        "StrategyIn": {"name": "n"},
        "ApiKeyIn": {"name": "n"},
    }[struct.__name__]


def test_the_constraints_the_server_enforces_are_declared(doc):
    schemas = doc["components"]["schemas"]
    order = schemas["OrderIn"]["properties"]
    number, text = order["quantity"]["oneOf"]
    assert number["type"] == "number" and number["exclusiveMinimum"] == 0 and number["maximum"] == 1e15
    assert re.fullmatch(text["pattern"].strip("^$"), "12.5e-3") and not re.fullmatch(text["pattern"].strip("^$"), " 1")
    assert order["symbol"]["pattern"] == model.SYMBOL_PATTERN and order["symbol"]["maxLength"] == 20
    assert order["fees"]["oneOf"][0]["minimum"] == 0 and order["fees"]["default"] == 0
    assert [arm.get("type") for arm in order["price"]["oneOf"]] == ["number", "string", "null"]
    assert order["external_order_id"]["oneOf"][0]["maxLength"] == 128  # on the string's arm, not beside it
    assert schemas["CashIn"]["properties"]["related_symbol"]["oneOf"][0]["pattern"] == model.SYMBOL_PATTERN
    creds = schemas["Credentials"]["properties"]
    assert creds["email"]["format"] == "email" and creds["password"]["minLength"] == accounts.MIN_PASSWORD
    assert schemas["StrategyIn"]["properties"]["benchmark"]["pattern"] == accounts.BENCHMARK_PATTERN
    params = {p["name"]: p for p in doc["paths"]["/api/v1/strategies/{strategy_id}/orders"]["post"]["parameters"]}
    assert params["BotRanks-Read-Your-Writes"]["schema"]["enum"] == ["on", "off"]
    listing = {p["name"]: p for p in doc["paths"]["/api/v1/strategies/{strategy_id}/orders"]["get"]["parameters"]}
    assert listing["cursor"]["schema"]["pattern"] == "^[0-9]{0,18}$"
    assert listing["limit"]["schema"]["minimum"] == 1 and listing["limit"]["schema"]["maximum"] == 1000
    nav = {p["name"]: p for p in doc["paths"]["/api/v1/strategies/{strategy_id}/nav"]["get"]["parameters"]}
    assert {"type": "string", "format": "date"} in nav["from"]["schema"]["oneOf"]


def test_two_ways_in_and_tags_on_every_operation(doc):
    schemes = doc["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "http", "scheme": "bearer", "description": schemes["apiKey"]["description"]}
    assert schemes["session"]["in"] == "cookie" and schemes["session"]["name"] == "access_token"
    assert "Bearer" in doc["info"]["description"] and "access_token" in doc["info"]["description"]
    assert {t["name"] for t in doc["tags"]} == {"Ledger", "Accounts", "Public data"}
    for path, method, op in _operations(doc):
        assert op["tags"] and op["security"], (method, path)
        if path.startswith("/api/v1/") and path != "/api/v1/fx":  # the FX rates are public data
            assert op["security"] == [{"apiKey": []}] and op["tags"] == ["Ledger"], (method, path)
        if path.startswith("/strategies"):
            assert op["security"] == [{"session": []}], (method, path)


def test_the_public_json_is_documented(doc):
    public = {path for path, _, op in _operations(doc) if op["tags"] == ["Public data"]}
    assert public == {
        "/api/v1/fx",
        "/p/leaderboard",
        "/p/strategies/{strategy_id}",
        "/p/strategies/{strategy_id}/series",
        "/p/strategies/{strategy_id}/nav.csv",
        "/p/strategies/{strategy_id}/trades.csv",
        "/p/strategies/{strategy_id}/events.jsonl",
        "/p/compare",
        "/p/owners/{handle}",
    }
    refs = re.findall(r'"\$ref": "([^"]+)"', msgspec.json.encode(doc).decode().replace('":"', '": "'))
    assert all(ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"] for ref in refs)


def test_each_api_serves_the_document_of_both(surface, doc):
    command_only, query_only = [Surface([app]).document()["paths"] for app in surface.apps]
    assert "/api/v1/strategies/{strategy_id}/state" not in command_only and "/auth/login" not in query_only
    assert set(doc["paths"]) >= set(command_only) | set(query_only)


@pytest.mark.parametrize(
    "path, methods",
    [
        (f"/api/v1/strategies/{SID}/state", {"GET", "OPTIONS"}),  # query_api's only
        (f"/api/v1/strategies/{SID}/positions/snapshot", {"POST", "OPTIONS"}),  # command_api's only
        (f"/api/v1/strategies/{SID}/orders", {"GET", "POST", "OPTIONS"}),  # both
        ("/strategies/", {"GET", "POST", "OPTIONS"}),
        ("/p/strategies/anything/events.jsonl", {"GET", "OPTIONS"}),
        ("/api/v1/strategies/not-a-uuid/state", {"GET", "OPTIONS"}),  # 405 for POST, 404 for GET (as Litestar)
        ("/nowhere", set()),
    ],
)
def test_the_methods_of_a_path_across_both_apis(surface, path, methods):
    assert surface.methods(path) == methods

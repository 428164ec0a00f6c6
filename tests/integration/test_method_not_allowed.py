"""A wrong method is 405 with an Allow naming every method of the path in both APIs, whichever API the
proxy hands it to (GET/HEAD of /api/v1 and the public pages go to query_api, the rest to command_api),
and OPTIONS says the same; each API serves the OpenAPI document of both."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def _allow(response) -> set[str]:
    return {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}


@pytest.fixture(scope="module")
def strategy(stack):
    return stack.new_strategy("methods")


def test_a_method_neither_api_serves_is_405_naming_both_apis_methods(stack, strategy):
    sid, auth = strategy
    base = f"/api/v1/strategies/{sid}"
    # where the proxy sends them: command_api gets everything but GET/HEAD of /api/v1
    for method, path, allowed in [
        ("POST", f"{base}/state", {"GET", "OPTIONS"}),  # command_api has no /state
        ("DELETE", f"{base}/nav", {"GET", "OPTIONS"}),
        ("PUT", f"{base}/orders", {"GET", "POST", "OPTIONS"}),  # was Allow: OPTIONS, POST
        ("PATCH", "/strategies", {"GET", "POST", "OPTIONS"}),
        ("POST", "/p/leaderboard", {"GET", "OPTIONS"}),  # a query_api page
        ("DELETE", "/", {"GET", "OPTIONS"}),
    ]:
        r = stack.command.request(method, path, headers=auth)
        assert r.status_code == 405 and _allow(r) == allowed, (method, path, r.status_code, r.headers, r.text)
        assert set(r.json()) == {"detail"}
    # query_api gets GET/HEAD of /api/v1: the snapshot is command_api's (POST only)
    for method in ("GET", "HEAD"):
        r = stack.query.request(method, f"{base}/positions/snapshot", headers=auth)
        assert r.status_code == 405 and _allow(r) == {"POST", "OPTIONS"}, (method, r.status_code, r.headers)
    r = stack.query.head(f"{base}/state", headers=auth)
    assert r.status_code == 405 and _allow(r) == {"GET", "OPTIONS"}


def test_options_names_the_methods_of_both_apis(stack, strategy):
    sid, auth = strategy
    for client in (stack.command, stack.query):
        r = client.options(f"/api/v1/strategies/{sid}/orders", headers=auth)
        assert r.status_code == 204 and _allow(r) == {"GET", "POST", "OPTIONS"}, (r.status_code, r.headers)
    r = stack.command.options(f"/api/v1/strategies/{sid}/state", headers=auth)  # a path command_api lacks
    assert r.status_code == 204 and _allow(r) == {"GET", "OPTIONS"}


def test_unknown_paths_stay_404_and_both_apis_agree_on_a_bad_id(stack, strategy):
    sid, auth = strategy
    for client in (stack.command, stack.query):
        assert client.delete("/nowhere").status_code == 404
        # as Litestar's router: the method is judged before the id is parsed
        r = client.post("/api/v1/strategies/not-a-uuid/state", headers=auth)
        assert r.status_code == 405 and _allow(r) == {"GET", "OPTIONS"}
    assert stack.query.get("/api/v1/strategies/not-a-uuid/state", headers=auth).status_code == 404


def test_each_api_serves_the_document_of_both(stack):
    docs = [client.get("/schema/openapi.json").json() for client in (stack.command, stack.query)]
    assert docs[0] == docs[1]
    assert {"/api/v1/strategies/{strategy_id}/state", "/auth/login", "/p/leaderboard"} <= set(docs[0]["paths"])
    assert set(docs[0]["components"]["securitySchemes"]) == {"apiKey", "session"}

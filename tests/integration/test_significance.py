"""Issue 21 through the real services: /performance's significance against scipy on the strategy's own
/nav, the trials counting private and deleted strategies, the board ranked by DSR, short histories."""

from __future__ import annotations

import math
import uuid
from datetime import date, timedelta

import numpy as np
import pytest
import scipy.stats as st

from botranks_domain.accounts import StrategySettingsIn
from botranks_domain.significance import EULER_GAMMA
from devtools.stack import wait_until

pytestmark = pytest.mark.integration

START = date(2024, 1, 1)
DAYS = [START + timedelta(days=i) for i in range(61)]  # every day: the symbols are priced daily


def _nav_returns(stack, sid: str, auth: dict[str, str]) -> np.ndarray:
    series = stack.query.get(f"/api/v1/strategies/{sid}/nav", headers=auth).json()["series"]
    equity = np.array([float(r["total_equity"]) for r in series])
    flows = np.array([float(r["external_flow"]) for r in series])
    return equity[1:] / (equity[:-1] + flows[1:]) - 1.0


def _per_day_sharpe(r: np.ndarray) -> float:
    return float(r.mean() / r.std(ddof=1))


def _seed(stack, owner: uuid.UUID, numbers: range) -> list[tuple[str, dict[str, str]]]:
    """Strategies of ``owner``, number i holding its own random walk SIG<i> for 60 daily returns."""
    bars = []
    for i in numbers:
        rng = np.random.default_rng(21 + i)
        prices = 100 * np.cumprod(1 + rng.normal(0.001 * (i - 1), 0.02, size=len(DAYS)))
        bars += [(f"SIG{i}", d.isoformat(), round(float(p), 2)) for d, p in zip(DAYS, prices, strict=True)]
    stack.add_prices(bars)
    made = []
    for i in numbers:
        sid, key = stack.db.identity.create_strategy(f"sig-{i}", owner_id=owner, benchmark="", visibility="private")
        auth = {"Authorization": f"Bearer {key}"}
        ok = stack.post(
            str(sid), "cash", {"event_type": "deposit", "amount": 10000, "occurred_at": f"{START}T09:00:00Z"}, auth
        )
        assert ok.status_code in (200, 201), ok.text
        order = {"symbol": f"SIG{i}", "side": "buy", "quantity": 50, "executed_at": f"{START}T15:00:00Z"}
        ok = stack.post(str(sid), "orders", {"orders": [order]}, auth)
        assert ok.status_code in (200, 201), ok.text
        made.append((str(sid), auth))
    return made


def _trials(stack) -> tuple[int, float | None]:
    with stack.sql() as curs:
        row = curs.execute("SELECT trials, sharpe_std FROM rm_trials").fetchone()
    return row["trials"], row["sharpe_std"]


def test_significance_trials_and_the_board(stack):
    owner = stack.db.identity.insert_user(f"sig-{uuid.uuid4().hex[:8]}@example.com", "x").id
    made = _seed(stack, owner, range(4))
    wait_until(lambda: _trials(stack)[0] == 4, 60, "the four strategies counted as trials")

    returns = {sid: _nav_returns(stack, sid, auth) for sid, auth in made}
    assert all(len(r) == 60 for r in returns.values())
    sharpes = [_per_day_sharpe(r) for r in returns.values()]
    n, v = len(sharpes), float(np.var(sharpes, ddof=1))
    assert _trials(stack) == (4, pytest.approx(math.sqrt(v), rel=1e-9))

    # /performance against scipy on the strategy's own /nav, with every trial private
    sid, auth = made[0]
    r = returns[sid]
    sig = stack.query.get(f"/api/v1/strategies/{sid}/performance", headers=auth).json()["significance"]
    sr, g3, g4 = _per_day_sharpe(r), st.skew(r), st.kurtosis(r, fisher=False)
    term = 1 - g3 * sr + (g4 - 1) / 4 * sr**2
    sigma = math.sqrt(term / (len(r) - 1))
    sr0 = math.sqrt(v) * ((1 - EULER_GAMMA) * st.norm.ppf(1 - 1 / n) + EULER_GAMMA * st.norm.ppf(1 - 1 / (n * math.e)))
    assert sig["observations"] == 60 and sig["trials"] == 4
    assert sig["skewness"] == pytest.approx(g3, rel=1e-9)
    assert sig["kurtosis"] == pytest.approx(g4, rel=1e-9)
    assert sig["psr"] == pytest.approx(st.norm.cdf(sr / sigma), rel=1e-9)
    assert sig["dsr"] == pytest.approx(st.norm.cdf((sr - sr0) / sigma), rel=1e-9)
    assert sig["sharpe_ci_95"] == pytest.approx(
        [(sr - 1.96 * sigma) * 252**0.5, (sr + 1.96 * sigma) * 252**0.5], rel=1e-9
    )
    assert sig["expected_max_sharpe"] == pytest.approx(sr0 * 252**0.5, rel=1e-9)
    assert sig["min_track_record_days"] == (math.ceil(1 + term * (1.6449 / sr) ** 2) if sr > 0 else None)

    # publish two: the board ranks by DSR by default, and its rows carry the figures
    for public_sid, _ in made[:2]:
        stack.db.identity.update_strategy(owner, uuid.UUID(public_sid), StrategySettingsIn(visibility="public"))

    def board() -> dict:
        return stack.query.get("/p/leaderboard").json()

    wait_until(lambda: len(board()["items"]) == 2, 30, "two public strategies on the board")
    page = board()
    assert page["sort"] == "dsr" and page["descending"] is True
    dsrs = [row["dsr"] for row in page["items"]]
    assert dsrs == sorted(dsrs, reverse=True)
    for row in page["items"]:
        assert row["observations"] == 60 and row["psr"] is not None and len(row["sharpe_ci_95"]) == 2
        assert row["dsr"] == pytest.approx(
            stack.query.get(
                f"/api/v1/strategies/{row['strategy_id']}/performance", headers=dict(made)[row["strategy_id"]]
            ).json()["significance"]["dsr"],
            rel=1e-12,
        )
    assert stack.query.get("/p/leaderboard", params={"sort": "psr"}).json()["sort"] == "psr"

    # deleting a trial leaves a tombstone: N and the spread stay, and the owner's record counts it
    before = _trials(stack)
    stack.db.delete_strategy(uuid.UUID(made[3][0]), grace_s=0)
    assert _trials(stack) == (before[0], pytest.approx(before[1], rel=1e-12))
    assert stack.db.identity.owner_record(uuid.UUID(sid)) == {"public": 2, "private": 1, "deleted": 1}

    # a fifth trial moves N: every board row's DSR follows within seconds, without a request
    (extra,) = _seed(stack, owner, range(4, 5))
    wait_until(lambda: _trials(stack)[0] == 5, 60, "the fifth trial counted")
    r5 = _nav_returns(stack, *extra)
    all_sharpes = [*sharpes, _per_day_sharpe(r5)]
    sd = float(np.std(all_sharpes, ddof=1))
    assert _trials(stack)[1] == pytest.approx(sd, rel=1e-9)

    def board_judged_against_five() -> bool:
        return all(
            row["dsr"]
            == pytest.approx(
                stack.query.get(
                    f"/api/v1/strategies/{row['strategy_id']}/performance", headers=dict(made)[row["strategy_id"]]
                ).json()["significance"]["dsr"],
                rel=1e-12,
            )
            for row in board()["items"]
        )

    wait_until(board_judged_against_five, 30, "the board re-judged against five trials")


def test_a_two_day_history_has_no_annualised_figures(stack):
    stack.add_prices([("TWO", d.isoformat(), p) for d, p in ((DAYS[0], 100.0), (DAYS[1], 103.0), (DAYS[2], 99.0))])
    sid, auth = stack.new_strategy("two days")
    stack.post(sid, "cash", {"event_type": "deposit", "amount": 1000, "occurred_at": f"{DAYS[0]}T09:00:00Z"}, auth)
    order = {"symbol": "TWO", "side": "buy", "quantity": 5, "executed_at": f"{DAYS[0]}T15:00:00Z"}
    stack.post(sid, "orders", {"orders": [order]}, auth)

    def perf() -> dict:
        return stack.query.get(f"/api/v1/strategies/{sid}/performance", headers=auth).json()

    wait_until(lambda: perf()["significance"]["observations"] >= 2, 30, "the NAV of three days")
    body = perf()
    for key in ("cagr", "volatility_annualized", "downside_volatility_annualized", "sharpe_ratio", "sortino_ratio"):
        assert body[key] is None, key
    assert body["total_return"] is not None
    assert "short_history" in [w["code"] for w in body["warnings"]]
    assert body["significance"]["psr"] is not None  # how sure we are is a figure at any length

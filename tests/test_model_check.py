"""The model check: a holdout test of the purchase model, on a shop simulated from known parameters.

The figures are recomputed here by hand from the simulated purchase days (plain Python), so a
wrong split at the cut-off, a customer counted twice or a shifted week shows up.
"""
from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from crm.services.insight import model_check
from tests.conftest import count_queries, soup, text_of
from tests.test_predict import AS_OF, AS_OF_DAY, load, simulate_customers


@pytest.fixture
def shop(app):
    customers = simulate_customers(seed=11, n=1200)
    load(customers)
    return customers


def by_hand(customers, weeks):
    """Return the calibration customers' (x before the cut-off, repeat purchase days after it) and the cut-off."""
    cutoff = AS_OF_DAY - timedelta(days=7 * weeks)
    rows = []
    for customer in customers:
        days = sorted(set(customer.days))
        if days[0] > cutoff:
            continue
        before = [d for d in days if d <= cutoff]
        rows.append((len(before) - 1, sum(1 for d in days if d > cutoff)))
    return cutoff, rows


def test_the_holdout_check_counts_what_happened_and_predicts_it_closely(shop):
    result = model_check.check(AS_OF, 20)
    assert result.ok, result.message
    cutoff, rows = by_hand(shop, 20)
    assert result.cutoff == cutoff and result.holdout_weeks == 20
    assert result.customers == len(rows) and result.all_customers == 1200
    assert result.repeat_customers == sum(1 for x, _ in rows if x > 0)
    assert result.actual_holdout == sum(after for _, after in rows)
    groups = {}
    for x, after in rows:
        key = f"{min(x, 7)}{'+' if x >= 7 else ''}"
        groups.setdefault(key, []).append(after)
    assert {r.repeat_purchases: (r.customers, pytest.approx(r.actual)) for r in result.by_frequency} == {
        key: (len(values), pytest.approx(np.mean(values))) for key, values in groups.items()}
    # The model is the true one, so its holdout prediction is close (over 10 seeds: within 8%).
    assert result.predicted_holdout == pytest.approx(result.actual_holdout, rel=0.15)
    # The tracking figure ends at the calibration customers' repeat purchases, all of them.
    assert result.weeks[-1].actual == sum(x for x, _ in rows) + result.actual_holdout
    assert result.weeks[-1].ends == AS_OF_DAY
    assert [w.holdout for w in result.weeks].index(True) >= 1
    assert all(a.actual <= b.actual and a.predicted <= b.predicted + 1e-9
               for a, b in zip(result.weeks, result.weeks[1:], strict=False))
    # ... and the model's line follows it: at the cut-off and at the end within 15%.
    at_cutoff = [w for w in result.weeks if not w.holdout][-1]
    assert at_cutoff.predicted == pytest.approx(at_cutoff.actual, rel=0.15)
    assert result.weeks[-1].predicted == pytest.approx(result.weeks[-1].actual, rel=0.15)
    assert 0 < result.mean_absolute_error < 2


def test_by_default_the_last_quarter_of_the_history_is_held_out(shop):
    result = model_check.check(AS_OF)
    first = min(min(c.days) for c in shop)
    assert result.holdout_weeks == round((AS_OF_DAY - first).days / 4 / 7)


def test_too_long_a_holdout_or_too_little_data_says_why(shop):
    assert "Choose fewer weeks" in model_check.check(AS_OF, 200).message
    with pytest.raises(ValueError):
        model_check.check(AS_OF, 0)


def test_an_empty_shop_has_nothing_to_check(app):
    assert model_check.check(AS_OF).message == "Nobody has bought anything yet, so there is nothing to check."


def test_crm_predict_holdout_json_prints_the_page_figures(runner, client, auth, shop):
    outcome = runner.invoke(args=["predict", "--as-of", "2026-03-01", "--holdout-weeks", "20", "--json"])
    assert outcome.exit_code == 0, outcome.output
    answer = json.loads(outcome.output)
    assert answer["holdout_weeks"] == 20 and answer["cutoff"] == str(AS_OF_DAY - timedelta(days=140))
    assert set(answer["bgnbd"]) >= {"r", "alpha", "a", "b", "log_likelihood"}
    assert [row["repeat_purchases"] for row in answer["by_frequency"]][:3] == ["0", "1", "2"]
    expected = model_check.check(AS_OF, 20)
    assert answer["mean_absolute_error"] == pytest.approx(expected.mean_absolute_error)
    assert answer["holdout_repeat_purchases"]["actual"] == expected.actual_holdout

    auth.as_role("viewer")
    page = soup(client.get("/insight/model?holdout_weeks=20&as_of=2026-03-01"))
    assert page.find("svg", id="holdout-by-frequency") is not None
    assert page.find("svg", id="holdout-tracking") is not None
    assert text_of(page.find(id="mean-absolute-error")).startswith(f"{answer['mean_absolute_error']:.3f}")
    rows = [[text_of(cell) for cell in tr.find_all(["th", "td"])] for tr in page.find(id="by-frequency").find_all("tr")]
    assert [(r[0], int(r[1]), f"{float(r[3]):.3f}") for r in rows] == [
        (row["repeat_purchases"], row["customers"], f"{row['actual']:.3f}") for row in answer["by_frequency"]]
    assert len(page.find(id="weekly").find_all("tr")) == len(answer["weekly_cumulative"])
    # Without --holdout-weeks, `crm predict --json` keeps its shape (tests/test_predict.py checks it in full).
    plain = json.loads(runner.invoke(args=["predict", "--as-of", "2026-03-01", "--json"]).output)
    assert list(plain) == ["as_of", "customers", "bgnbd", "gamma_gamma"]


def test_the_page_names_bad_input_and_the_dashboard_links_to_it(client, auth, shop):
    auth.as_role("viewer")
    response = client.get("/insight/model?holdout_weeks=soon&as_of=yesterday")
    assert response.status_code == 200
    errors = [text_of(p) for p in soup(response).select(".field-error")]
    assert any(e.startswith("Weeks held out: 'soon'") for e in errors)
    assert any(e.startswith("As of: 'yesterday'") for e in errors)
    dashboard = soup(client.get("/"))
    assert dashboard.find("a", href="/insight/model") is not None


def test_the_page_reads_the_orders_in_a_fixed_number_of_statements(client, auth, shop):
    auth.as_role("viewer")
    with count_queries() as statements:
        assert client.get("/insight/model?as_of=2026-03-01").status_code == 200
    assert len(statements) <= 6, statements


def test_crm_predict_holdout_in_words(runner, shop):
    outcome = runner.invoke(args=["predict", "--as-of", "2026-03-01", "--holdout-weeks", "20"])
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.output.splitlines()
    assert lines[0].startswith("Model check as of 2026-03-01 12:00 UTC: fitted on the orders up to 2025-10-12, "
                               "20 weeks held out.")
    assert lines[2].startswith("Repeat purchases in the holdout: predicted ")
    assert lines[4].startswith("  0 | ") and lines[-1].startswith("Done in ")
    bad = runner.invoke(args=["predict", "--holdout-weeks", "0"])
    assert bad.exit_code == 2 and "holdout-weeks" in bad.output

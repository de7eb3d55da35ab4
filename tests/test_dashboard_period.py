"""The dashboard for any period and as-of date: an imported history from years ago, a year, a range,
all history, and an as-of that cuts a month in half."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from crm.extensions import db
from crm.services.insight import figures as insight
from tests.conftest import count_queries, soup, text_of
from tests.insight_data import at, contact, journey, order, refresh_aggregates


@pytest.fixture
def old_shop(app):
    """A shop whose imported history ended in 2020: nothing in the last 12 months."""
    anna = contact("Anna")
    order(anna, at(2019, 3, 10), "100.00")
    order(anna, at(2019, 6, 10), "40.00")
    order(anna, at(2020, 2, 1), "60.00")
    ben = contact("Ben")
    order(ben, at(2019, 6, 10), "25.00")
    order(ben, at(2019, 6, 20), "35.00")  # after the as-of used below
    cleo = contact("Cleo")
    order(cleo, at(2019, 6, 25), "70.00")  # a first order after the as-of: not a customer yet then
    journey(anna, ("awareness", at(2019, 3, 1)), ("conversion", at(2019, 3, 10)), ("retention", at(2019, 6, 10)))
    journey(ben, ("awareness", at(2019, 6, 1)), ("conversion", at(2019, 6, 10)), ("retention", at(2019, 6, 20)))
    journey(cleo, ("awareness", at(2019, 6, 24)), ("conversion", at(2019, 6, 25)))
    for person in (anna, ben, cleo):
        person.created_at = at(2019, 1, 1)
    refresh_aggregates()
    return {"anna": anna, "ben": ben, "cleo": cleo}


def revenue_table(page) -> dict[str, str]:
    section = page.find("section", attrs={"aria-labelledby": "revenue-heading"})
    rows = section.select("details table tbody tr")
    return {text_of(r.find("th")): text_of(r.find_all("td")[2]) for r in rows}


def test_an_old_history_says_the_last_12_months_are_empty_and_offers_its_period(client, auth, old_shop):
    auth.as_role("viewer")
    page = soup(client.get("/"))
    revenue = page.find("section", attrs={"aria-labelledby": "revenue-heading"})
    words = text_of(revenue.find(class_="chart-empty"))
    assert "No paid orders in the last 12 months" in words and "Paid orders run from 2019-03 to 2020-02" in words
    link = revenue.find("a", class_="period-with-data")["href"]
    assert "period=range" in link and "from=2019-03" in link and "to=2020-02" in link
    shown = soup(client.get(link))
    assert revenue_table(shown)["Mar 2019"] == "€100.00"
    assert revenue_table(shown)["Jun 2019"] == "€170.00"
    assert list(revenue_table(shown))[-1] == "Feb 2020"


def test_a_year_and_all_history(client, auth, old_shop):
    auth.as_role("viewer")
    year = soup(client.get("/?period=year&year=2019"))
    table = revenue_table(year)
    assert list(table)[0] == "Jan 2019" and list(table)[-1] == "Dec 2019" and "Feb 2020" not in table
    assert "Showing 2019" in text_of(year.find(class_="period-shown"))
    cohorts = year.find("svg", id="cohort-retention")
    assert cohorts is not None
    everything = revenue_table(soup(client.get("/?period=all")))
    assert list(everything)[0] == "Mar 2019" and everything["Feb 2020"] == "€60.00"


def test_as_of_means_nothing_after_that_moment_counts(client, auth, old_shop):
    auth.as_role("viewer")
    page = soup(client.get("/?period=range&from=2019-03&to=2019-06&as_of=2019-06-15"))
    table = revenue_table(page)
    assert table["Jun 2019"] == "€65.00"  # Anna 40 + Ben 25 on the 10th; not Ben's 20th nor Cleo's 25th
    stats = [text_of(a) for a in page.select(".stat-grid article")]
    assert any(s.startswith("2 customers") for s in stats)  # Cleo had not bought yet
    assert any(s.startswith("€65.00 revenue in the 30 days to 15 Jun 2019") for s in stats)
    # The funnel as it stood: Ben had converted but not yet come back; Cleo was not there yet.
    shop = insight.period("range", at(2019, 6, 15, 23, 59), "UTC", start=date(2019, 3, 1), end=date(2019, 6, 1))
    funnel = {s.stage: s.contacts for s in insight.journey_funnel(at(2026, 1, 1), shop).stages}
    assert funnel["retention"] == 1 and funnel["conversion"] == 1
    cohort = {row.month: row.customers for row in insight.cohort_retention(at(2026, 1, 1), "UTC", shop).rows}
    assert cohort[date(2019, 6, 1)] == 1 and cohort[date(2019, 3, 1)] == 1


def test_about_to_lose_sees_the_orders_by_the_as_of(app, old_shop):
    anna = old_shop["anna"]
    anna.health = "lapsed"
    old_shop["ben"].health = "lapsed"
    db.session.commit()
    result = insight.about_to_lose(at(2026, 1, 1), as_of=at(2019, 6, 15))
    found = {c.name: c for c in result.customers}
    assert set(found) == {anna.name}  # spent more than the median by then (140 against 25)
    assert found[anna.name].total_spent == Decimal("140.00") and found[anna.name].order_count == 2
    assert found[anna.name].last_order_at == at(2019, 6, 10)


@pytest.mark.parametrize("query, field", [
    ("period=year&year=nineteen", "Year"), ("period=range&from=2019-13&to=2019-06", "From"),
    ("period=soon", "Period"), ("as_of=15-06-2019", "As of"), ("period=range&from=2019-06&to=2019-03", "The range"),
])
def test_a_bad_period_is_named_and_the_last_12_months_shown(client, auth, old_shop, query, field):
    auth.as_role("viewer")
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    errors = [text_of(p) for p in soup(response).select(".field-error")]
    assert errors and errors[0].startswith(field), errors
    assert "Showing the last 12 months" in text_of(soup(response).find(class_="period-shown"))


def test_any_period_costs_the_same_statements(client, auth, old_shop):
    auth.as_role("viewer")
    counts = []
    for query in ("", "?period=all", "?period=year&year=2019&as_of=2019-06-15"):
        with count_queries() as statements:
            assert client.get(f"/{query}").status_code == 200
        counts.append(len(statements))
    assert max(counts) <= 25 and max(counts) - min(counts) <= 1, counts  # the same bound as test_dashboard


def test_segments_of_another_day_say_so(client, auth, old_shop):
    from crm.models import Setting

    db.session.add(Setting(key="predict.last_run", value={
        "as_of": "2019-06-15T12:00:00+00:00", "customers": 2, "purchases_predicted": False,
        "values_predicted": False, "messages": [], "caution": None}))
    old_shop["anna"].rfm_segment = "champions"
    db.session.commit()
    auth.as_role("viewer")
    today = soup(client.get("/"))
    notes = [text_of(p) for p in today.select(".prediction-other-day")]
    assert notes and notes[0].startswith("Worked out as of 15 Jun 2019")
    assert "crm predict --as-of" in notes[0]
    same_day = soup(client.get("/?period=all&as_of=2019-06-15"))
    assert same_day.select(".prediction-other-day") == []

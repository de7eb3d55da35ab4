"""The dashboard page: its pictures from an empty shop, a demo shop and known data; CSP, cost, roles."""
from decimal import Decimal

import pytest
from flask import render_template

from crm.extensions import db
from crm.models import ROLES, Contact, utcnow
from crm.services.insight import figures as insight
from crm.services.shop import demo
from tests.conftest import count_queries, make_user, soup, text_of
from tests.insight_data import at, contact, days, journey, order, refresh_aggregates, task

CHART_IDS = ("journey-funnel", "revenue-by-month", "cohort-retention", "lead-scores", "rfm-segments")

def dashboard(client):
    response = client.get("/")
    assert response.status_code == 200
    return soup(response)


def texts(svg) -> list[str]:
    """The words drawn in an SVG chart, one entry per <text> element."""
    return [text_of(t) for t in svg.find_all("text")]


def section(page, heading_id):
    return page.find("section", attrs={"aria-labelledby": heading_id})


def assert_accessible_chart(svg):
    assert svg["role"] == "img" and svg.get("viewbox") and svg["width"] == "100%"
    title = svg.find("title")
    assert title is not None and text_of(title)
    labelled_by = svg["aria-labelledby"].split()
    assert title["id"] in labelled_by


def assert_no_inline_styles(page):
    assert page.select("[style]") == [], "style attributes are blocked by the CSP"
    assert page.select("style") == [] and page.select("script:not([src])") == []


# ---------------------------------------------------------------------------- an empty shop


def test_an_empty_shop_gets_a_friendly_word_instead_of_each_chart(client, auth):
    auth.as_role("viewer")
    page = dashboard(client)
    assert page.select("svg.chart") == []
    empty = {text_of(p) for p in page.select(".chart-empty")}
    assert any("No contacts yet" in t and "journey" in t for t in empty)
    assert any("No paid orders in the last 12 months" in t for t in empty)
    assert any("first orders" in t.lower() for t in empty)
    # No card asks for a command; each empty one links to the page that fills it.
    assert not any("crm " in t for t in empty)
    assert any(t.startswith("No segments yet") for t in empty)
    assert "No valuable customers look at risk right now. See all customers" in empty
    assert page.select_one(".chart-empty a[href*='/imports']") is not None
    assert any(t.startswith("Nothing due today") for t in empty)
    assert_no_inline_styles(page)


# ---------------------------------------------------------------------------- the demo shop


@pytest.fixture
def demo_shop(app):
    make_user("admin")
    demo.generate(contacts=300, seed=1)
    db.session.commit()


def test_the_demo_shop_draws_every_chart_with_its_numbers(client, auth, demo_shop):
    auth.login()
    page = dashboard(client)
    for chart_id in CHART_IDS:
        svg = page.find("svg", id=chart_id)
        assert svg is not None, chart_id
        assert_accessible_chart(svg)
        assert svg.find_parent("section").select_one("details.chart-data table") is not None
    # The engine places the demo's 300 contacts across the journey: each stage's count is drawn.
    from sqlalchemy import func, select

    from crm.extensions import db

    funnel = texts(page.find("svg", id="journey-funnel"))
    per_stage = dict(db.session.execute(select(Contact.stage, func.count()).group_by(Contact.stage)).all())
    assert len(per_stage) == 5 and sum(per_stage.values()) == 300
    for count in per_stage.values():
        assert any(t.startswith(f"{count} · ") for t in funnel), (count, funnel)
    cells = texts(page.find("svg", id="cohort-retention"))
    assert cells and any(t.endswith("%") for t in cells)
    amounts = [t for t in texts(page.find("svg", id="revenue-by-month")) if t.startswith("€")]
    assert len(amounts) >= 10  # a total above (nearly) every month's bar
    # The demo ends with a refresh, which segments the customers and predicts: the at-risk list
    # is ranked by the chance of still buying, and says how rough a small shop's figures are.
    at_risk = text_of(section(page, "at-risk-heading"))
    assert "less than 50% likely to still be buying" in at_risk and "the predictions are rough" in at_risk
    assert_no_inline_styles(page)


# ---------------------------------------------------------------------------- known data, drawn


@pytest.fixture
def known_shop(app):
    """Stage histories, orders, predictions and a to-do with known figures; now is today."""
    now = utcnow()
    t0 = now - days(40)
    walker = contact("Walker", last_name="Stone")
    journey(walker, ("awareness", t0), ("consideration", t0 + days(2)), ("conversion", t0 + days(5)))
    asker = contact("Asker")
    journey(asker, ("awareness", t0), ("consideration", t0 + days(4)))
    lurker = contact("Lurker", lead_score=95)
    journey(lurker, ("awareness", t0))
    order(walker, now - days(1), "120.00")
    order(asker, now - days(1), "30.00")
    refresh_aggregates()
    walker.p_alive, walker.rfm_segment = 0.25, "Champions"
    asker.p_alive, asker.rfm_segment = 0.9, "New customers"
    db.session.commit()
    return {"walker": walker, "asker": asker, "lurker": lurker, "now": now}


def test_the_funnel_shows_counts_conversion_and_time_in_stage(client, auth, known_shop):
    auth.as_role("sales")
    svg = dashboard(client).find("svg", id="journey-funnel")
    words = texts(svg)
    assert words[:2] == ["Contacts in the stage now", "Median stay"]
    assert ["Awareness", "Consideration", "Conversion", "Retention", "Advocacy"] == [
        text_of(t) for t in svg.select("text.stage-name")]
    assert "1 · 33%" in words  # one contact in each of three stages
    assert "↓ 67% moved on (2 of 3 who entered awareness)" in words
    assert "↓ 50% moved on (1 of 2 who entered consideration)" in words
    assert "↓ no one has entered retention yet" in words
    assert "3 days" in words and "3 weeks" not in words  # median awareness stay: 2 and 4 days
    bars = svg.select("rect.bar")
    assert [b["class"][1] for b in bars] == ["fill-awareness", "fill-consideration", "fill-conversion"]


def test_about_to_lose_links_each_customer_to_their_page(client, auth, known_shop):
    auth.as_role("support")
    part = section(dashboard(client), "at-risk-heading")
    rows = part.select("#about-to-lose tbody tr")
    walker = known_shop["walker"]
    assert len(rows) == 1  # the asker is 90% likely still buying
    link = rows[0].select_one("a")
    assert (text_of(link), link["href"]) == ("Walker Stone", f"/contacts/{walker.id}")
    svg = rows[0].select_one("svg")
    assert_accessible_chart(svg)
    assert texts(svg) == ["€120", "25%"]


def test_about_to_lose_links_to_the_contact_page(app, client, auth, known_shop):
    auth.as_role("viewer")
    link = section(dashboard(client), "at-risk-heading").select_one("#about-to-lose a")
    assert link["href"] == f"/contacts/{known_shop['walker'].id}"
    assert client.get(link["href"]).status_code == 200


def test_segments_are_drawn_with_their_size_and_value(client, auth, known_shop):
    auth.as_role("viewer")
    svg = dashboard(client).find("svg", id="rfm-segments")
    assert_accessible_chart(svg)
    words = texts(svg)
    assert words[0] == "Champions" and words[1] == "1 · €120 · 80% of value"
    assert "New customers" in words and "1 · €30 · 20% of value" in words


def test_revenue_bars_carry_their_amounts(client, auth, known_shop):
    auth.as_role("viewer")
    svg = dashboard(client).find("svg", id="revenue-by-month")
    words = texts(svg)
    assert "€150" in words  # this month's total, above the bar (or last month's, near a month's start)
    assert "New customers" in words and "Returning customers" in words
    assert len(svg.select("text.axis-label")) >= 12


def test_the_histogram_labels_bins_and_counts(client, auth, known_shop):
    auth.as_role("viewer")
    svg = dashboard(client).find("svg", id="lead-scores")
    words = texts(svg)
    assert "0–9" in words and "90–100" in words
    assert words.count("2") == 1 and words.count("1") == 1  # two at 0, the lurker at 95


def test_my_todos_due_today_name_the_contact_and_link_to_the_list(client, auth, known_shop):
    me = make_user("sales")
    other = make_user("support")
    now = known_shop["now"]
    task(known_shop["walker"], me.id, now - days(3), title="Win Walker back")
    task(known_shop["asker"], me.id, now + days(3), title="Next week")
    task(known_shop["asker"], other.id, now - days(1), title="Not mine")
    db.session.commit()
    auth.as_role("sales")
    part = section(dashboard(client), "tasks-heading")
    items = [text_of(li) for li in part.select(".due-tasks li")]
    assert len(items) == 1 and items[0].startswith("Walker Stone : Win Walker back")
    assert "overdue since" in items[0]
    assert part.select_one(".due-tasks a")["href"] == f"/contacts/{known_shop['walker'].id}"
    assert part.select("a")[-1]["href"] == "/tasks"


def test_every_chart_has_a_title_and_a_table_of_its_numbers(client, auth, known_shop):
    auth.as_role("viewer")
    page = dashboard(client)
    for chart_id in CHART_IDS:
        svg = page.find("svg", id=chart_id)
        assert svg is not None, chart_id
        assert_accessible_chart(svg)
        table = svg.find_parent("section").select_one("details.chart-data table")
        assert table is not None and table.select("tbody tr"), chart_id
    assert_no_inline_styles(page)


# ---------------------------------------------------------------------------- cost, roles


def fill(count: int, now) -> None:
    """Add `count` contacts with histories, orders, predictions and to-dos."""
    owner = make_user("sales", email=f"sales{count}@example.com")
    for n in range(count):
        person = contact(f"P{n}", lead_score=n % 100, rfm_segment=("Champions", "At risk")[n % 2],
                         p_alive=(n % 10) / 10, health="at_risk")
        journey(person, ("awareness", now - days(200)), ("consideration", now - days(150 - n % 30)))
        order(person, now - days(n % 300), "40.00")
        order(person, now - days(n % 200 + 1), "25.00")
        task(person, owner.id, now - days(n % 5))
    refresh_aggregates()


def test_the_dashboard_costs_the_same_queries_for_10_or_200_contacts(client, auth):
    auth.as_role("admin")
    now = utcnow()
    fill(10, now)
    with count_queries() as few:
        dashboard(client)
    fill(190, now)
    with count_queries() as many:
        dashboard(client)
    assert len(few) == len(many)
    # 19 for the figures, the sign-in, the admins' failed-jobs card, whether a refresh is on its way, 3 for the email card
    assert len(many) <= 25, many


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_dashboard(client, auth, role):
    auth.as_role(role)
    assert dashboard(client).select_one("h1").get_text() == "Dashboard"


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


# ---------------------------------------------------------------------------- the contact page's partial


def render_figures(app, person, now):
    with app.test_request_context():
        return soup_of(render_template("insight/_customer_figures.html", contact=person,
                                       figures=insight.customer_figures(person, now, "UTC")))


def soup_of(html):
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "html.parser")


def test_customer_figures_read_as_sentences_next_to_a_sparkline(app):
    now = at(2026, 6, 15)
    person = contact("Anna", p_alive=0.82, expected_orders_90d=1.4, predicted_value_12m=Decimal("240.00"),
                     next_order_expected_at=now + days(35))
    order(person, at(2025, 3, 10), "100.00")
    order(person, at(2026, 2, 10), "40.00")
    order(person, at(2026, 2, 20), "20.00")
    refresh_aggregates()
    part = render_figures(app, person, now)
    lines = [text_of(li) for li in part.select(".figures li")]
    assert lines == [
        "Spent so far: €160.00 over 3 paid orders.",
        "Average order: €53.33.",
        "Time between orders: orders every 6 months on average.",
        "Next 12 months: predicted to spend €240.00.",
        "Next 90 days: expected to place about 1.4 orders.",
        "Still a customer? 82% likely still active (18% risk they have stopped buying).",
        "Next order: likely to order again within 5 weeks (around 20 Jul 2026).",
    ]
    svg = part.select_one("svg.chart")
    assert_accessible_chart(svg)
    assert "€100" in texts(svg) and len(svg.select("circle")) == 2
    assert [text_of(td) for td in part.select("details table tbody td")] == ["1", "€100.00", "2", "€60.00"]
    assert_no_inline_styles(part)


def test_customer_figures_say_not_enough_data_rather_than_guess(app):
    person = contact("New")
    db.session.commit()
    part = render_figures(app, person, at(2026, 6, 15))
    lines = [text_of(li) for li in part.select(".figures li")]
    assert lines[0] == "Spent so far: no paid orders yet."
    assert sum("not enough data yet" in line for line in lines) == 6
    assert part.select("svg") == [] and "No paid orders in the last 24 months." in text_of(part)


def test_an_overdue_expected_order_says_so(app):
    now = at(2026, 6, 15)
    person = contact("Late", next_order_expected_at=now - days(14))
    db.session.commit()
    lines = [text_of(li) for li in render_figures(app, person, now).select(".figures li")]
    assert lines[-1] == "Next order: was expected 2 weeks ago (1 Jun 2026); the order is overdue."


# ---------------------------------------------------------------------------- chart words


@pytest.mark.parametrize("amount, label", [
    (Decimal("0"), "€0"), (Decimal("840.40"), "€840"), (Decimal("1000"), "€1k"), (Decimal("1250"), "€1.2k"),
    (Decimal("12345.67"), "€12k"), (Decimal("2500000"), "€2.5M"), (None, "—"),
    (Decimal("-840.40"), "−€840"), (Decimal("-12345.67"), "−€12k"), (Decimal("-0.20"), "€0"),
])
def test_chart_amounts_are_short(app, amount, label):
    from crm.views.main import money_short

    assert money_short(amount) == label


@pytest.mark.parametrize("share, label", [(None, "—"), (0, "0%"), (0.004, "<1%"), (0.5, "50%"), (0.996, ">99%"), (1, "100%")])
def test_shares_never_round_a_few_to_nothing(share, label):
    from crm.views.main import percent

    assert percent(share) == label


@pytest.mark.parametrize("seconds, words", [
    (None, "—"), (600, "under an hour"), (5 * 3600, "5 hours"), (86400, "1 day"), (12 * 86400, "12 days"),
    (35 * 86400, "5 weeks"), (173.5 * 86400, "6 months"), (800 * 86400, "2.2 years"),
])
def test_durations_read_in_the_unit_that_fits(seconds, words):
    from crm.views.main import duration

    assert duration(seconds) == words


@pytest.mark.parametrize("amount, currency, text", [
    (Decimal("12.5"), None, "€12.50"), (Decimal("-12.5"), None, "−€12.50"), (Decimal("-1234.5"), "USD", "−$1,234.50"),
    (Decimal("-3"), "SEK", "−3.00 SEK"), (Decimal("3"), "SEK", "3.00 SEK"),
])
def test_money_puts_the_minus_before_the_currency_sign(app, amount, currency, text):
    from crm.views.formatting import format_money

    with app.test_request_context():
        assert format_money(amount, currency) == text

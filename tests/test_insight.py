"""The insight figures on hand-made data with known answers."""
from datetime import date
from decimal import Decimal

import pytest

from crm.extensions import db
from crm.models import StageChange
from crm.services.insight import figures as insight
from tests.conftest import make_user
from tests.insight_data import NOW, at, contact, days, journey, order, refresh_aggregates, task

T0 = at(2026, 1, 5)


def by_stage(funnel):
    return {s.stage: s for s in funnel.stages}


# ---------------------------------------------------------------------------- the journey funnel


@pytest.fixture
def journeys(app):
    """Five contacts whose histories give known funnel figures."""
    walked = contact("Walker")  # awareness → consideration (2 days) → conversion (3 days)
    journey(walked, ("awareness", T0), ("consideration", T0 + days(2)), ("conversion", T0 + days(5)))
    asked = contact("Asker")  # awareness → consideration (after 4 days), still considering
    journey(asked, ("awareness", T0), ("consideration", T0 + days(4)))
    lurker = contact("Lurker")  # entered awareness, stayed
    journey(lurker, ("awareness", T0))
    skipped = contact("Skipper")  # bought without asking first: awareness → conversion after 10 days
    journey(skipped, ("awareness", T0), ("conversion", T0 + days(10)))
    contact("Untracked")  # no history at all, standing in awareness since it was added
    db.session.commit()


def test_the_funnel_counts_contacts_in_each_stage_now(journeys):
    funnel = insight.journey_funnel(NOW)
    stages = by_stage(funnel)
    assert funnel.total == 5 and funnel.has_history
    assert [(s.stage, s.contacts) for s in funnel.stages] == [
        ("awareness", 2), ("consideration", 1), ("conversion", 2), ("retention", 0), ("advocacy", 0)]
    assert stages["awareness"].share == pytest.approx(0.4)


def test_conversion_is_the_share_of_those_who_entered_a_stage_who_later_went_further(journeys):
    stages = by_stage(insight.journey_funnel(NOW))
    # Awareness: all five entered; the walker, the asker and the skipper went further.
    assert (stages["awareness"].entered, stages["awareness"].moved_on) == (5, 3)
    assert stages["awareness"].conversion == pytest.approx(0.6)
    # Consideration: the walker and the asker entered; only the walker bought.
    assert (stages["consideration"].entered, stages["consideration"].moved_on) == (2, 1)
    assert stages["consideration"].conversion == pytest.approx(0.5)
    assert (stages["conversion"].entered, stages["conversion"].moved_on) == (2, 0)
    assert stages["conversion"].conversion == 0
    # Nobody reached retention: no share rather than a division by zero.
    assert stages["retention"].entered == 0 and stages["retention"].conversion is None


def test_median_time_in_stage_counts_completed_stays_only(journeys):
    stages = by_stage(insight.journey_funnel(NOW))
    # Completed awareness stays: 2, 4 and 10 days (the lurker is still there).
    assert stages["awareness"].median_seconds == pytest.approx(4 * 86400)
    assert stages["awareness"].stays == 3
    assert stages["consideration"].median_seconds == pytest.approx(3 * 86400)
    assert stages["conversion"].median_seconds is None and stages["conversion"].stays == 0


def test_median_time_of_an_even_number_of_stays_is_the_middle_two_averaged(app):
    for stay in (1, 2, 4, 30):
        journey(contact(), ("consideration", T0), ("conversion", T0 + days(stay)))
    db.session.commit()
    assert by_stage(insight.journey_funnel(NOW))["consideration"].median_seconds == pytest.approx(3 * 86400)


def test_moving_back_to_a_stage_is_not_moving_on_from_it(app):
    # Pinned back by hand: retention first, then consideration; consideration was never left forward.
    pinned = contact("Pinned")
    journey(pinned, ("retention", T0), ("consideration", T0 + days(3)))
    db.session.commit()
    stages = by_stage(insight.journey_funnel(NOW))
    assert (stages["consideration"].entered, stages["consideration"].moved_on) == (1, 0)
    assert (stages["retention"].entered, stages["retention"].moved_on) == (1, 0)


def test_a_stage_known_only_as_where_a_change_came_from_counts_as_entered(app):
    # Contacts that sat in awareness before the journey engine ran have no change *into* it.
    old = contact("Old")
    db.session.add(StageChange(contact_id=old.id, from_stage="awareness", to_stage="consideration", changed_at=T0))
    old.stage = "consideration"
    db.session.commit()
    stages = by_stage(insight.journey_funnel(NOW))
    assert (stages["awareness"].entered, stages["awareness"].moved_on) == (1, 1)


def test_without_stage_history_the_funnel_still_counts_stages(app):
    contact(stage="awareness")
    contact(stage="retention")
    db.session.commit()
    funnel = insight.journey_funnel(NOW)
    assert not funnel.has_history
    assert by_stage(funnel)["retention"].contacts == 1
    assert all(s.median_seconds is None for s in funnel.stages)


# ---------------------------------------------------------------------------- cohorts and revenue


@pytest.fixture
def shop(app):
    """Four customers with known orders around the spring of 2026 (now is 15 June 2026)."""
    xenia = contact("Xenia")
    order(xenia, at(2026, 3, 5), "100.00")
    order(xenia, at(2026, 3, 20), "40.00")  # again in her first month
    order(xenia, at(2026, 5, 2), "60.00")  # two months later
    yusuf = contact("Yusuf")
    order(yusuf, at(2026, 3, 10), "30.00")
    order(yusuf, at(2026, 4, 11), "25.00", status="partially_refunded", refunded="5.00")  # one month later
    order(yusuf, at(2026, 5, 12), "99.00", status="refunded", refunded="99.00")  # not a purchase
    order(yusuf, at(2026, 5, 13), "15.00", status="pending")  # not paid yet
    zoe = contact("Zoe")
    order(zoe, at(2026, 4, 1), "80.00")
    walter = contact("Walter")  # a customer since 2025, outside the last 12 cohorts
    order(walter, at(2025, 1, 1), "10.00")
    order(walter, at(2026, 3, 3), "70.00")
    contact("Never")  # no orders
    refresh_aggregates()
    return {"xenia": xenia, "yusuf": yusuf, "zoe": zoe, "walter": walter}


def test_cohorts_cover_the_last_12_months_oldest_first(shop):
    cohorts = insight.cohort_retention(NOW, "UTC")
    assert [row.month for row in cohorts.rows] == [date(2025, 7, 1), *[date(2025, m, 1) for m in range(8, 13)],
                                                   *[date(2026, m, 1) for m in range(1, 7)]]
    assert {row.month: row.customers for row in cohorts.rows if row.customers} == {
        date(2026, 3, 1): 2, date(2026, 4, 1): 1}
    assert cohorts.customers == 3  # Walter's first order was in 2025


def test_a_cohort_cell_is_the_share_who_ordered_in_that_month(shop):
    march = next(row for row in insight.cohort_retention(NOW, "UTC").rows if row.month == date(2026, 3, 1))
    shares = [None if cell is None else (cell.customers, cell.share) for cell in march.cells]
    assert shares[0] == (1, 0.5)  # Xenia ordered twice in March
    assert shares[1] == (1, 0.5)  # Yusuf in April (a partial refund still counts)
    assert shares[2] == (1, 0.5)  # Xenia in May; Yusuf's refunded and pending orders do not
    assert shares[3] == (0, 0.0)  # June, so far nobody
    assert shares[4:] == [None] * 8  # months that have not come yet


def test_revenue_splits_new_and_returning_customers_by_their_first_order_month(shop):
    revenue = insight.revenue_by_month(NOW, "UTC")
    months = {m.month: m for m in revenue.months}
    assert len(revenue.months) == 12 and revenue.months[-1].month == date(2026, 6, 1)
    march, april, may = months[date(2026, 3, 1)], months[date(2026, 4, 1)], months[date(2026, 5, 1)]
    assert (march.new, march.returning) == (Decimal("170.00"), Decimal("70.00"))  # Xenia 140 + Yusuf 30; Walter
    assert (march.new_customers, march.returning_customers) == (2, 1)
    assert (april.new, april.returning) == (Decimal("80.00"), Decimal("20.00"))  # Zoe; Yusuf less his refund
    assert (may.new, may.returning, may.total) == (Decimal("0.00"), Decimal("60.00"), Decimal("60.00"))
    assert revenue.total == Decimal("400.00") and revenue.highest == Decimal("240.00")
    assert isinstance(march.new, Decimal)


def test_months_follow_the_shop_time_zone(app):
    late = contact("Late")
    # 23:30 UTC on 31 May is already 1 June in Berlin.
    order(late, at(2026, 5, 31, 23, 30), "42.00")
    refresh_aggregates()
    in_utc = {m.month: m.total for m in insight.revenue_by_month(NOW, "UTC").months}
    in_berlin = {m.month: m.total for m in insight.revenue_by_month(NOW, "Europe/Berlin").months}
    assert in_utc[date(2026, 5, 1)] == Decimal("42.00") and in_utc[date(2026, 6, 1)] == 0
    assert in_berlin[date(2026, 6, 1)] == Decimal("42.00") and in_berlin[date(2026, 5, 1)] == 0


@pytest.mark.parametrize("zone, orders", [
    # Amsterdam: CET (+1) in winter, CEST (+2) from 29 Mar 2026. Seen from June (+2), a fixed offset
    # would put 31 Oct 2025 22:30 UTC (23:30 CET, October) in November, and 31 Mar 2026 21:30 UTC
    # (23:30 CEST, March) right; 28 Feb 2026 23:30 UTC is 1 Mar 00:30 CET.
    ("Europe/Amsterdam", [((2025, 10, 31, 22, 30), date(2025, 10, 1)), ((2025, 10, 31, 23, 30), date(2025, 11, 1)),
                          ((2026, 2, 28, 22, 30), date(2026, 2, 1)), ((2026, 2, 28, 23, 30), date(2026, 3, 1)),
                          ((2026, 3, 31, 21, 30), date(2026, 3, 1)), ((2026, 3, 31, 22, 30), date(2026, 4, 1))]),
    # New York: EDT (-4) until 2 Nov 2025, EST (-5) until 8 Mar 2026. 1 Dec 2025 04:30 UTC is still
    # 30 Nov (23:30 EST); a fixed June offset (-4) would say December.
    ("America/New_York", [((2025, 11, 1, 3, 30), date(2025, 10, 1)), ((2025, 11, 1, 4, 30), date(2025, 11, 1)),
                          ((2025, 12, 1, 4, 30), date(2025, 11, 1)), ((2025, 12, 1, 5, 30), date(2025, 12, 1)),
                          ((2026, 3, 1, 4, 30), date(2026, 2, 1)), ((2026, 3, 1, 5, 30), date(2026, 3, 1)),
                          ((2026, 4, 1, 3, 30), date(2026, 3, 1)), ((2026, 4, 1, 4, 30), date(2026, 4, 1))]),
])
def test_months_are_exact_at_daylight_saving_boundaries(app, zone, orders):
    expected: dict[date, Decimal] = {}
    for n, (moment, month) in enumerate(orders):
        amount = Decimal(10 ** n)  # each order's amount tells where it went
        order(contact(f"Edge{n}"), at(*moment), f"{amount}.00")
        expected[month] = expected.get(month, Decimal(0)) + amount
    refresh_aggregates()
    revenue = {m.month: m.total for m in insight.revenue_by_month(NOW, zone).months if m.total}
    assert revenue == expected
    # Every one of them is a new customer in the month of that same order.
    cohorts = {row.month: row.customers for row in insight.cohort_retention(NOW, zone).rows if row.customers}
    counted: dict[date, int] = {}
    for _moment, month in orders:
        counted[month] = counted.get(month, 0) + 1
    assert cohorts == counted


# ---------------------------------------------------------------------------- scores and segments


def test_lead_scores_fall_into_ten_point_bins_with_100_in_the_last(app):
    for score in (0, 9, 10, 55, 99, 100, 100):
        contact(lead_score=score)
    db.session.commit()
    histogram = insight.lead_score_histogram()
    assert [(b.low, b.high) for b in histogram.bins][:2] == [(0, 9), (10, 19)]
    assert histogram.bins[-1].low == 90 and histogram.bins[-1].high == 100
    assert [b.contacts for b in histogram.bins] == [2, 1, 0, 0, 0, 1, 0, 0, 0, 3]
    assert (histogram.total, histogram.highest) == (7, 3)


def test_rfm_segments_sum_customers_and_what_they_spent(app):
    contact(rfm_segment="Champions", total_spent=Decimal("300.00"), order_count=3)
    contact(rfm_segment="Champions", total_spent=Decimal("100.00"), order_count=2)
    contact(rfm_segment="At risk", total_spent=Decimal("100.00"), order_count=1)
    contact()  # not segmented yet
    db.session.commit()
    segments = insight.rfm_segments()
    assert [(s.name, s.customers, s.value) for s in segments.segments] == [
        ("Champions", 2, Decimal("400.00")), ("At risk", 1, Decimal("100.00"))]
    assert segments.segments[0].share_of_value == pytest.approx(0.8)


def test_no_segments_before_predictions_ran(app):
    contact(total_spent=Decimal("50.00"), order_count=1)
    db.session.commit()
    assert insight.rfm_segments().segments == []


# ---------------------------------------------------------------------------- about to lose


def customer(name, spent, **fields):
    return contact(name, total_spent=Decimal(spent), order_count=fields.pop("order_count", 2), **fields)


def test_about_to_lose_lists_valuable_customers_unlikely_to_be_alive(app):
    # 1,500 sorts before 200 as text: the median must compare amounts as numbers.
    first = customer("Ann", "1500.00", p_alive=0.2, predicted_value_12m=Decimal("50.00"))
    customer("Ben", "400.00", p_alive=0.9, predicted_value_12m=Decimal("60.00"))  # still buying
    customer("Cem", "300.00", p_alive=0.1, predicted_value_12m=Decimal("10.00"))  # at the median, not above
    second = customer("Dora", "200.00", p_alive=0.3, predicted_value_12m=Decimal("900.00"))  # predicted high
    customer("Eli", "100.00", p_alive=0.4, predicted_value_12m=Decimal("20.00"))  # small
    contact("Prospect", p_alive=0.1)  # never bought
    db.session.commit()
    result = insight.about_to_lose(NOW)
    assert result.basis == "p_alive" and result.median_spent == Decimal("300.00")
    assert [c.contact_id for c in result.customers] == [first.id, second.id]
    assert result.customers[0].name == "Ann Tester" and result.customers[0].p_alive == pytest.approx(0.2)


def test_about_to_lose_falls_back_to_health_before_predictions(app):
    first = customer("Ann", "500.00", health="at_risk")
    second = customer("Ben", "400.00", health="lapsed")
    customer("Cem", "300.00", health="at_risk")  # at the median
    customer("Dora", "350.00", health="active")
    customer("Eli", "100.00", health="lapsed")  # small
    db.session.commit()
    result = insight.about_to_lose(NOW)
    assert result.basis == "health"
    # Median of 100, 300, 350, 400, 500 is 350.
    assert result.median_spent == Decimal("350.00")
    assert [c.contact_id for c in result.customers] == [first.id, second.id]


def test_about_to_lose_shows_the_ten_who_spent_most_and_skips_erased_people(app):
    for n in range(25):
        customer(f"C{n}", f"{100 + n}.00", p_alive=0.1)
    customer("Gone", "999.00", p_alive=0.1, erased_at=NOW)
    db.session.commit()
    result = insight.about_to_lose(NOW)
    assert len(result.customers) == 10
    assert [c.total_spent for c in result.customers][:2] == [Decimal("124.00"), Decimal("123.00")]


def test_about_to_lose_is_empty_without_customers(app):
    contact()
    db.session.commit()
    result = insight.about_to_lose(NOW)
    assert result.customers == [] and result.median_spent is None


# ---------------------------------------------------------------------------- to-dos


def test_todays_tasks_are_the_users_open_unsnoozed_ones_due_by_the_end_of_the_shop_day(app):
    me, other = make_user("sales"), make_user("support")
    anna, ben = contact("Anna"), contact("Ben")
    # 21:30 UTC on 15 June is 23:30 in Berlin: the Berlin day ends at 22:00 UTC.
    now = at(2026, 6, 15, 21, 30)
    late_today = task(anna, me.id, at(2026, 6, 15, 21, 45), title="Late today")
    overdue = task(ben, me.id, at(2026, 6, 10), title="Overdue")
    woke = task(anna, me.id, at(2026, 6, 14), title="Snooze over", snoozed_until=at(2026, 6, 15, 8))
    task(anna, me.id, at(2026, 6, 15, 22, 30), title="Tomorrow in Berlin")
    task(anna, me.id, at(2026, 6, 12), title="Snoozed", snoozed_until=at(2026, 6, 16))
    task(anna, me.id, at(2026, 6, 12), title="Done", status="done")
    task(anna, other.id, at(2026, 6, 12), title="Someone else's")
    db.session.commit()
    due = insight.tasks_due_today(me.id, now, "Europe/Berlin")
    assert [t.task_id for t in due.tasks] == [overdue.id, woke.id, late_today.id]
    assert due.total == 3
    assert [t.overdue for t in due.tasks] == [True, True, False]
    assert due.tasks[0].contact_name == "Ben Tester"
    # In UTC, the 22:30 task is due today too.
    assert insight.tasks_due_today(me.id, now, "UTC").total == 4


def test_todays_tasks_list_the_first_ten_and_count_them_all(app):
    me = make_user("sales")
    anna = contact("Anna")
    for n in range(14):
        task(anna, me.id, NOW - days(n), title=f"Task {n}")
    db.session.commit()
    due = insight.tasks_due_today(me.id, NOW, "UTC")
    assert len(due.tasks) == 10 and due.total == 14
    assert due.tasks[0].title == "Task 13"


# ---------------------------------------------------------------------------- one customer


def test_customer_figures_from_orders_and_predictions(app):
    anna = contact("Anna", p_alive=0.82, expected_orders_90d=1.4, predicted_value_12m=Decimal("240.00"),
                   next_order_expected_at=NOW + days(35))
    order(anna, at(2025, 3, 10), "100.00")  # 15 months ago
    order(anna, at(2026, 2, 10), "40.00")
    order(anna, at(2026, 2, 20), "20.00")
    order(anna, at(2024, 1, 1), "500.00", status="cancelled")
    refresh_aggregates()
    figures = insight.customer_figures(anna, NOW, "UTC")
    assert (figures.historic_value, figures.order_count) == (Decimal("160.00"), 3)
    assert figures.average_order_value == Decimal("53.33")
    # 10 Mar 2025 to 20 Feb 2026 is 347 days over two gaps.
    assert figures.average_days_between_orders == pytest.approx(173.5)
    assert figures.churn_probability == pytest.approx(0.18)
    assert figures.days_to_next_order == 35
    assert figures.predicted_value_12m == Decimal("240.00") and figures.expected_orders_90d == pytest.approx(1.4)
    assert len(figures.months) == 24 and figures.months[-1].month == date(2026, 6, 1)
    assert figures.months[0].month == date(2024, 7, 1)
    with_orders = {m.month: (m.orders, m.amount) for m in figures.months if m.orders}
    assert with_orders == {date(2025, 3, 1): (1, Decimal("100.00")), date(2026, 2, 1): (2, Decimal("60.00"))}
    assert figures.highest_month == Decimal("100.00")


def test_customer_figures_say_nothing_they_cannot_know(app):
    newcomer = contact("New")
    db.session.commit()
    figures = insight.customer_figures(newcomer, NOW, "UTC")
    assert figures.order_count == 0 and figures.historic_value == Decimal("0.00")
    assert figures.average_order_value is None and figures.average_days_between_orders is None
    assert figures.predicted_value_12m is None and figures.expected_orders_90d is None
    assert figures.p_alive is None and figures.churn_probability is None and figures.days_to_next_order is None
    assert not figures.has_orders_in_window


# ---------------------------------------------------------------------------- nothing at all


def test_every_figure_works_on_an_empty_database(app):
    board = insight.dashboard(None, NOW, "UTC")
    assert board.funnel.total == 0 and all(s.conversion is None for s in board.funnel.stages)
    assert board.cohorts.customers == 0 and len(board.cohorts.rows) == 12
    assert board.revenue.total == 0 and len(board.revenue.months) == 12
    assert board.scores.total == 0 and board.segments.segments == []
    assert board.at_risk.customers == [] and board.tasks.total == 0

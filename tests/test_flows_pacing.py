"""The cap and the sending window, as one pure rule: over random send plans no contact ever gets
more than the cap in any 7-day window and nothing goes outside the window."""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st

from crm.services.flows.pacing import Pacing, earliest, in_window

START = datetime(2026, 3, 1, tzinfo=UTC)
ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Pacific/Auckland"])


@st.composite
def plans(draw):
    zone = ZoneInfo(draw(ZONES))
    start_hour = draw(st.integers(0, 22))
    end_hour = draw(st.integers(start_hour + 1, 23))
    pacing = Pacing(cap=draw(st.integers(1, 4)), period_days=draw(st.integers(1, 10)),
                    window_start=time(start_hour), window_end=time(end_hour, draw(st.sampled_from([0, 30]))), zone=zone)
    # Requests: (contact, minutes after START), in time order, as the worker would meet them.
    requests = draw(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 60 * 24 * 40)), max_size=60))
    return pacing, sorted(requests, key=lambda r: r[1])


def _max_in_any_window(times, period):
    times = sorted(times)
    return max((sum(1 for t in times if s <= t < s + period) for s in times), default=0)


@settings(max_examples=300, deadline=None)
@given(plans())
def test_no_contact_ever_gets_more_than_the_cap_and_nothing_goes_outside_the_window(plan):
    pacing, requests = plan
    sent: dict[int, list[datetime]] = {}
    for contact, minutes in requests:
        want = START + timedelta(minutes=minutes)
        moment = earliest(sent.get(contact, []), want, pacing)
        assert moment is not None and moment >= want
        assert in_window(moment, pacing), moment.astimezone(pacing.zone)
        sent.setdefault(contact, []).append(moment)
    for times in sent.values():
        assert _max_in_any_window(times, pacing.period) <= pacing.cap


@settings(max_examples=100, deadline=None)
@given(plans(), st.integers(0, 60 * 24 * 3))
def test_a_message_that_cannot_go_in_time_is_skipped_never_sent_late(plan, patience):
    pacing, requests = plan
    sent: dict[int, list[datetime]] = {}
    for contact, minutes in requests:
        want = START + timedelta(minutes=minutes)
        until = want + timedelta(minutes=patience)
        moment = earliest(sent.get(contact, []), want, pacing, relevant_until=until)
        if moment is not None:
            assert want <= moment <= until and in_window(moment, pacing)
            sent.setdefault(contact, []).append(moment)
    for times in sent.values():
        assert _max_in_any_window(times, pacing.period) <= pacing.cap


def test_defaults_two_in_seven_days_between_nine_and_eight():
    pacing = Pacing()
    monday_noon = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert earliest([], monday_noon, pacing) == monday_noon
    assert earliest([], monday_noon.replace(hour=21), pacing) == datetime(2026, 3, 3, 9, tzinfo=UTC)
    assert earliest([], monday_noon.replace(hour=6), pacing) == monday_noon.replace(hour=9)
    two = [monday_noon - timedelta(days=3), monday_noon - timedelta(days=1)]
    # The third waits until the first of the two is a week old.
    assert earliest(two, monday_noon, pacing) == datetime(2026, 3, 6, 12, tzinfo=UTC)
    assert earliest(two, monday_noon, pacing, relevant_until=monday_noon + timedelta(days=1)) is None

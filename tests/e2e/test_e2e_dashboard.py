"""In the browser: the dashboard's headline figures and its journey funnel agree with the database."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from crm.models import STAGES, Contact, Task
from tests.e2e.browser import Dashboard
from tests.e2e.shop import count, db_rows

pytestmark = pytest.mark.e2e


def test_the_funnel_counts_contacts_in_each_journey_stage(logged_in_page, seeded):
    dashboard = Dashboard(logged_in_page).open()

    in_database = dict(db_rows(select(Contact.stage, func.count()).group_by(Contact.stage)))
    expected = {stage: in_database.get(stage, 0) for stage in STAGES}
    assert sum(expected.values()) == 3
    # What the chart writes beside its bars, and the table behind "Show the numbers".
    assert dashboard.funnel_bars() == expected
    assert dashboard.stage_counts() == expected
    expect(dashboard.funnel().locator("details.chart-data table")).to_be_visible()

    figures = dashboard.figures()
    assert figures["contacts"] == "3"
    assert figures["customers with a paid order"] == "1"
    assert figures["open to-dos"] == str(count(Task, Task.status == "open"))

"""In the browser: the dashboard counts contacts per journey stage."""
import pytest
from sqlalchemy import func, select

from crm.models import STAGES, Contact
from tests.e2e.browser import Dashboard
from tests.e2e.shop import db_rows

pytestmark = pytest.mark.e2e


def test_dashboard_counts_contacts_in_each_journey_stage(logged_in_page, seeded):
    dashboard = Dashboard(logged_in_page).open()

    in_database = dict(db_rows(select(Contact.stage, func.count()).group_by(Contact.stage)))
    assert dashboard.stage_counts() == {stage: in_database.get(stage, 0) for stage in STAGES}
    assert dashboard.figures()["contacts"] == "3"
    assert dashboard.figures()["customers with a paid order"] == "1"
    assert dashboard.figures()["open to-dos"] == "1"

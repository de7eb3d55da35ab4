"""In the browser: the leads page ranks contacts by score with the reasons, and filters by stage."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.models import Contact
from crm.services.people.leads import top_reasons
from tests.e2e.browser import fill_form, same_document
from tests.e2e.shop import db_rows, db_scalar

pytestmark = pytest.mark.e2e


def test_leads_are_ranked_by_score_with_their_reasons_and_filter_by_stage(logged_in_page, seeded):
    page = logged_in_page
    page.goto("/leads")
    leads = page.locator("#lead-list tr.lead")
    ranked = db_rows(select(Contact.id, Contact.lead_score).order_by(Contact.lead_score.desc(), Contact.id.desc()))
    assert len({score for _, score in ranked}) > 1, "the seeded contacts should not all score the same"

    expect(leads).to_have_count(3)
    assert [int(row.get_attribute("data-contact-id")) for row in leads.all()] == [id for id, _ in ranked]
    expect(leads.locator("td.score")).to_have_text([str(score) for _, score in ranked])
    # Each row says why: the heaviest lines of the score's breakdown.
    lead = page.locator(f"#lead-{seeded.lead.id}")
    expect(lead.locator("td.name a")).to_have_text(seeded.lead.name)
    breakdown = db_scalar(select(Contact.score_breakdown).where(Contact.id == seeded.lead.id))
    expect(lead.locator("ul.reasons li")).to_have_text(
        [f"{line['points']:+d} {line['why']}" for line in top_reasons(breakdown)])

    stage = db_scalar(select(Contact.stage).where(Contact.id == seeded.lead.id))
    in_stage = [id for id, in db_rows(select(Contact.id).where(Contact.stage == stage)
                                       .order_by(Contact.lead_score.desc(), Contact.id.desc()))]
    assert len(in_stage) < 3, "the filter should leave someone out"
    with same_document(page):
        fill_form(page.get_by_role("search"), {"Stage": stage.capitalize()})
        expect(page.locator("#lead-count")).to_have_text(f"{len(in_stage)} contact" + ("" if len(in_stage) == 1 else "s"))
        expect(leads).to_have_count(len(in_stage))
    assert [int(row.get_attribute("data-contact-id")) for row in leads.all()] == in_stage
    expect(leads.locator("td.stage .badge").first).to_have_text(stage.capitalize())
    expect(page).to_have_url(re.compile(rf"[?&]stage={stage}(&|$)"))

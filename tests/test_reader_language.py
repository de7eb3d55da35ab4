"""Each user picks their language on /account, and amounts and dates read as in that language."""
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests.helpers import sign_in, soup, text_of

DUTCH = {"Accept-Language": "nl-NL,nl;q=0.9"}
ENGLISH = {"Accept-Language": "en-GB,en;q=0.9"}


@pytest.mark.parametrize("headers, expected", [
    (ENGLISH, ["€1,234.50", "−€1,234.50", "3.00 SEK", "5 Dec 2026", "5 Dec 2026 14:30", "Dec 2026",
               "December 2026", "3 weeks ago", "2,048 MB"]),
    (DUTCH, ["€\u00a01.234,50", "−€\u00a01.234,50", "3,00 SEK", "5 dec 2026", "5 dec 2026 14:30", "dec 2026",
             "december 2026", "3 weken geleden", "2.048 MB"]),
])
def test_amounts_and_dates_read_as_in_the_readers_language(app, headers, expected):
    from crm.views.formatting import format_date, format_datetime, format_money, human_size, time_ago

    now = datetime(2026, 12, 26, 12, 0, tzinfo=timezone.utc)
    with app.test_request_context(headers=headers):
        assert [
            format_money(Decimal("1234.5")), format_money(Decimal("-1234.5")), format_money(3, "SEK"),
            format_date(date(2026, 12, 5)), format_datetime(datetime(2026, 12, 5, 14, 30, tzinfo=timezone.utc)),
            format_date(date(2026, 12, 5), "%b %Y"), format_date(date(2026, 12, 5), "%B %Y"),
            time_ago(now - timedelta(days=25), now), human_size(2048 * 1024 * 1024),
        ] == expected


def test_the_dutch_dashboard_is_in_dutch(client):
    sign_in(client, "admin")
    page = soup(client.get("/", headers=DUTCH))
    assert page.select_one("html")["lang"] == "nl"
    stats = [text_of(p) for p in page.select(".stat-grid p")]
    assert stats[0] == "contacten" and stats[1] == "klanten met een betaalde bestelling" and stats[-1] == "open taken"
    assert "omzet in de 30 dagen tot" in stats[2]
    assert re.search(r"€\s0,00", page.select_one(".stat-grid").get_text())
    assert "de laatste 12 maanden" in text_of(page.select_one(".period-shown"))

"""Page helpers for browser tests: sign in and out, fill forms by their labels, read field
errors, flashes and tables, type into a live search, and check that an htmx action changed
the page without loading a new one. See tests/e2e/README.md for how to use them."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Locator, Page, expect

from tests.conftest import PASSWORD

Scope = Page | Locator  # a whole page, or a form / section of it


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form and wait until the signed-in header shows."""
    page.goto("/login")
    fill_form(page, {"Email": email, "Password": password})
    submit(page, "Sign in")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def sign_out(page: Page) -> None:
    """Press "Sign out" and wait for the sign-in page."""
    submit(page, "Sign out")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def labelled(scope: Scope, label: str) -> Locator:
    """Return the form control whose label reads exactly `label`.

    A <select> inside its <label> adds the text of all its options to the label's, so
    Playwright's exact `get_by_label` misses it; such a select is found by the label's own text.
    """
    assert '"' not in label, "labels with double quotes are not supported"
    wrapped_select = scope.locator(f'xpath=.//label[normalize-space(text()[1])="{label}"]//select')
    return scope.get_by_label(label, exact=True).or_(wrapped_select)


def fill_form(scope: Scope, values: dict[str, str | bool]) -> None:
    """Fill fields found by their exact label: text is typed, a bool ticks or clears a
    checkbox, and a <select> gets the option with that label."""
    for label, value in values.items():
        control = labelled(scope, label)
        if isinstance(value, bool):
            control.set_checked(value)
        elif control.evaluate("element => element.tagName") == "SELECT":
            control.select_option(label=value)
        else:
            control.fill(value)


def submit(scope: Scope, button: str) -> None:
    """Click the button with this accessible name."""
    scope.get_by_role("button", name=button, exact=True).click()


def field_error(scope: Scope, label: str) -> Locator:
    """Return the reason shown under the field with this label (the `field()` macro
    renders it as <small class="field-error" id="<field id>-error">)."""
    field_id = labelled(scope, label).get_attribute("id")
    return scope.locator(f"[id='{field_id}-error']")


def flashes(page: Page) -> Locator:
    """Return the flash messages at the top of the page."""
    return page.locator("#flashes .flash")


def table_rows(table: Locator) -> list[dict[str, str]]:
    """Return a table's body rows as {header text: cell text}."""
    expect(table).to_be_visible()
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    return [dict(zip(headers, (c.strip() for c in row.locator("th, td").all_inner_texts())))
            for row in table.locator("tbody tr").all()]


def type_slowly(field: Locator, text: str) -> None:
    """Type key by key, as a person does, so live search (keyup/input triggers) fires."""
    field.fill("")
    field.press_sequentially(text, delay=40)


def wait_for_htmx(page: Page) -> None:
    """Wait until no htmx request is in flight and the last swap has settled."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


@contextmanager
def same_document(page: Page) -> Iterator[None]:
    """Fail when the block makes the browser load a new document: an htmx swap (even one
    that pushes a URL) keeps the document, a full page load or reload does not."""
    page.evaluate("() => { window.__e2eSameDocument = true; }")
    yield
    assert page.evaluate("() => window.__e2eSameDocument === true"), "the page was reloaded"


class SetupPage:
    """/setup: the first-run form that creates the admin."""

    def __init__(self, page: Page):
        self.page = page

    def open(self) -> "SetupPage":
        self.page.goto("/setup")
        expect(self.page.get_by_role("heading", name="Welcome")).to_be_visible()
        return self

    def create_admin(self, name: str, email: str, password: str = PASSWORD, *, demo: bool = False) -> None:
        fill_form(self.page, {"Your name": name, "Email": email, "Password": password,
                              "Repeat the password": password,
                              "Fill the CRM with a demo shop so I can look around": demo})
        submit(self.page, "Set up the shop and create the admin account")


class Dashboard:
    """/: the shop at a glance."""

    def __init__(self, page: Page):
        self.page = page

    def open(self) -> "Dashboard":
        self.page.goto("/")
        expect(self.page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
        return self

    def figures(self) -> dict[str, str]:
        """Return the headline figures as {caption: figure}, e.g. {"contacts": "3"}."""
        cards = self.page.locator(".stat-grid article").all()
        return {card.locator("p").inner_text().strip(): card.locator(".stat").inner_text().strip() for card in cards}

    def funnel(self) -> Locator:
        """Return the journey card: the funnel chart and its "Show the numbers" table."""
        return self.page.locator("section.insight-card", has=self.page.locator("svg#journey-funnel"))

    def funnel_bars(self) -> dict[str, int]:
        """Return what the funnel chart writes beside each bar as {stage: contacts}."""
        chart = self.page.locator("svg#journey-funnel")
        expect(chart).to_be_visible()
        stages = [name.strip().lower() for name in chart.locator("text.stage-name").all_text_contents()]
        # Each bar's label reads "<contacts> · <share>".
        counts = [int(label.split("·")[0].strip().replace(",", ""))
                  for label in chart.locator("text.value:has(tspan)").all_text_contents()]
        return dict(zip(stages, counts, strict=True))

    def stage_counts(self) -> dict[str, int]:
        """Return the funnel's data table ("Show the numbers") as {stage: contacts now}."""
        numbers = self.funnel().locator("details.chart-data")
        if not numbers.evaluate("details => details.open"):
            numbers.locator("summary").click()
        return {row["Stage"].lower(): int(row["Now"].replace(",", "")) for row in table_rows(numbers.locator("table"))}

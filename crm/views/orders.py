"""Orders: the list with search and filters, one order's page, and typing an order in for a contact."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    DecimalField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectField,
    StringField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from crm.extensions import db, htmx
from crm.models import ORDER_STATUSES
from crm.services import shop
from crm.services.orders import queries as order_queries
from crm.services.orders import recording as order_service
from crm.services.orders.single import ManualLine, manual_order_record
from crm.services.people import contacts
from crm.services.shared.errors import ValidationError
from crm.views.access import access
from crm.views.contact_forms import ORDER_STATUS_LABELS, order_status_label
from crm.views.formatting import shop_zone
from crm.views.forms import apply_errors, choices, translated
from crm.views.import_text import outcome_words
from crm.views.params import date_arg, page_arg

bp = Blueprint("orders", __name__)

PAGE = 50
LINE_ROWS = 5
def _day_start(value: date) -> datetime:
    """Return the UTC instant a shop-local day begins."""
    return datetime.combine(value, time.min, tzinfo=shop_zone()).astimezone(timezone.utc)


def _date_arg(name: str) -> date | None:
    return date_arg(name)


@bp.route("/orders")
@access("read")
def index():
    """List orders, newest first: search by number or customer, filter by status and dates."""
    q = request.args.get("q", "").strip()[:200]
    status = request.args.get("status") or None
    if status not in (None, *ORDER_STATUSES):
        status = None
    placed_from, placed_to = _date_arg("from"), _date_arg("to")
    page = page_arg()
    result = order_queries.search_orders(
        q, status=status, page=page, per_page=PAGE,
        placed_from=_day_start(placed_from) if placed_from else None,
        placed_before=_day_start(placed_to + timedelta(days=1)) if placed_to else None,
    )
    filters = {"q": q, "status": status or "", "from": placed_from.isoformat() if placed_from else "",
               "to": placed_to.isoformat() if placed_to else ""}
    context = dict(result=result, filters=filters, statuses=ORDER_STATUSES, order_status_label=order_status_label,
                   page_url=lambda n: url_for("orders.index", **{k: v for k, v in filters.items() if v}, page=n))
    if htmx.fragment:
        return render_template("orders/_rows.html", **context)
    return render_template("orders/index.html", **context)


@bp.route("/orders/<int:order_id>")
@access("read")
def show(order_id: int):
    """Show one order: its items, totals, status and customer."""
    order = order_queries.order_with_lines(order_id)
    if order is None:
        abort(404)
    return render_template("orders/show.html", order=order, order_status_label=order_status_label)


class LineForm(Form):
    sku = StringField(_l("SKU"), validators=[Optional(), Length(max=120)])
    name = StringField(_l("Item"), validators=[Optional(), Length(max=300)])
    quantity = IntegerField(_l("Qty"), default=1, validators=[Optional(), NumberRange(min=1, max=1_000_000)])
    unit_price = DecimalField(_l("Unit price"), places=2, validators=[Optional(), NumberRange(min=0)])


class OrderForm(FlaskForm):
    number = StringField(_l("Order number"), validators=[Optional(), Length(max=60)])
    placed_at = DateTimeLocalField(_l("Placed at"), format="%Y-%m-%dT%H:%M", validators=[InputRequired()])
    status = SelectField(_l("Status"), choices=choices((s, ORDER_STATUS_LABELS[s]) for s in ORDER_STATUSES),
                         default="paid")
    currency = StringField(_l("Currency"), validators=[InputRequired(), Length(min=3, max=3)])
    lines = FieldList(FormField(LineForm), min_entries=LINE_ROWS, max_entries=50)
    discount = DecimalField(_l("Discount"), places=2, default=0, validators=[Optional(), NumberRange(min=0)])
    shipping = DecimalField(_l("Shipping"), places=2, default=0, validators=[Optional(), NumberRange(min=0)])
    tax = DecimalField(_l("Tax (included in the prices)"), places=2, default=0, validators=[Optional(), NumberRange(min=0)])
    total = DecimalField(_l("Total"), places=2, validators=[Optional(), NumberRange(min=0)])


@bp.route("/contacts/<int:contact_id>/orders/new", methods=["GET", "POST"])
@access("write")
def new(contact_id: int):
    """Type in an order a contact placed (in the shop, by phone): it counts like any other order."""
    contact = contacts.writable_contact(contact_id)
    form = OrderForm()
    if request.method == "GET":
        form.currency.data = shop.current().currency
        form.placed_at.data = datetime.now(shop_zone()).replace(second=0, microsecond=0, tzinfo=None)
    elif form.validate_on_submit():
        placed_at = form.placed_at.data.replace(tzinfo=shop_zone()).astimezone(timezone.utc)
        lines = [ManualLine(sku=(line.sku.data or "").strip() or None, name=(line.name.data or "").strip(),
                            quantity=line.quantity.data or 1, unit_price=line.unit_price.data or 0)
                 for line in (entry.form for entry in form.lines)]
        try:
            record = manual_order_record(
                contact, lines=lines, placed_at=placed_at, status=form.status.data, currency=form.currency.data,
                discount=form.discount.data or 0, shipping=form.shipping.data or 0, tax=form.tax.data or 0,
                total=form.total.data, number=form.number.data,
            )
        except ValidationError as error:
            if "lines" in error.fields:  # about the item rows as a whole
                form.form_errors.append(translated(error.fields.pop("lines")))
            if error.fields:
                apply_errors(form, error)
        else:
            outcome = order_service.record_order(record, actor_id=current_user.id, contact_id=contact.id)
            if outcome.result == "rejected":
                form.form_errors.append(outcome_words(outcome.reason) or _("The order was refused."))
            else:
                db.session.commit()
                flash(_("Order %(number)s recorded for %(name)s.", number=record.number, name=contact.name), "success")
                return redirect(url_for("orders.show", order_id=outcome.order_id))
    return render_template("orders/new.html", form=form, contact=contact), \
        400 if form.errors or form.form_errors else 200

"""Finding contacts: search, filters, sorts, keyset pages, and a contact's timeline.

The list page, the CSV export, the bulk actions and the JSON API all call these
functions, so a filter means the same thing everywhere.
"""
from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, false, func, literal_column, or_, select, true, union
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlalchemy.orm import aliased, joinedload, selectinload

from crm.extensions import db
from crm.models import (
    HEALTHS,
    STAGES,
    Contact,
    ContactExternalId,
    Interaction,
    Order,
    StageChange,
    Tag,
    Task,
    User,
    contact_tags,
    search_index,
)
from crm.services.shared.bounds import check_int, parse_id, parse_json
from crm.services.shared.errors import N_

PAGE_SIZE = 50
# Counting every match of a text search over 100,000 contacts reads them all; past this
# many the list says "more than 10,000" instead of counting on.
COUNT_CAP = 10_000
TIMELINE_PAGE_SIZE = 20


# ---------------------------------------------------------------------------
# Filters

@dataclass(frozen=True)
class SortKey:
    column: Any
    descending: bool
    nullable: bool = False


@dataclass(frozen=True)
class Sort:
    label: str
    keys: tuple[SortKey, ...]


# Every sort ends on the id so that the order, and so the keyset cursor, is total.
SORTS: dict[str, Sort] = {
    "name": Sort(N_("Name"), (SortKey(Contact.last_name, False), SortKey(Contact.first_name, False),
                          SortKey(Contact.id, False))),
    "score": Sort(N_("Lead score"), (SortKey(Contact.lead_score, True), SortKey(Contact.id, True))),
    "last_order": Sort(N_("Last order"), (SortKey(Contact.last_order_at, True, nullable=True), SortKey(Contact.id, True))),
    "spent": Sort(N_("Total spent"), (SortKey(Contact.total_spent, True), SortKey(Contact.id, True))),
    "newest": Sort(N_("Newest"), (SortKey(Contact.created_at, True), SortKey(Contact.id, True))),
}
DEFAULT_SORT = "name"
TODO_CHOICES = ("yes", "no")


def _int_or_none(value: Any, low: int = 0, high: int = 100) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return min(max(number, low), high)


def _getlist(args: Mapping, name: str) -> list[str]:
    if hasattr(args, "getlist"):
        return [v for v in args.getlist(name) if v]
    value = args.get(name)
    if isinstance(value, (list, tuple)):
        return [v for v in value if v]
    return [value] if value else []


@dataclass(frozen=True)
class ContactFilters:
    """What a person asked the contact list for; every field empty means everyone."""

    q: str = ""
    stage: str | None = None
    health: str | None = None
    tags: tuple[str, ...] = ()
    score_min: int | None = None
    score_max: int | None = None
    open_todo: str | None = None  # "yes", "no" or None
    owner: str | None = None  # a user id, "me" or "none" (unassigned)
    sort: str = DEFAULT_SORT
    segment: int | None = None  # a saved segment's id: its members only

    @classmethod
    def from_args(cls, args: Mapping) -> ContactFilters:
        """Return the filters in query-string arguments, ignoring values that make no sense."""
        stage = args.get("stage") or None
        health = args.get("health") or None
        owner = (args.get("owner") or "").strip() or None
        # An id must fit the column (PostgreSQL refuses a larger integer outright).
        if owner is not None and owner not in ("me", "none") and parse_id(owner) is None:
            owner = None
        sort = args.get("sort") or DEFAULT_SORT
        return cls(
            q=(args.get("q") or "").strip()[:200],
            stage=stage if stage in STAGES else None,
            health=health if health in HEALTHS else None,
            tags=tuple(sorted({t.strip().lower() for t in _getlist(args, "tag") if t.strip()})),
            score_min=_int_or_none(args.get("score_min")) if args.get("score_min") not in (None, "") else None,
            score_max=_int_or_none(args.get("score_max")) if args.get("score_max") not in (None, "") else None,
            open_todo=args.get("todo") if args.get("todo") in TODO_CHOICES else None,
            owner=owner,
            sort=sort if sort in SORTS else DEFAULT_SORT,
            segment=parse_id((args.get("segment") or "").strip()),
        )

    def to_args(self, *, with_sort: bool = True) -> list[tuple[str, str]]:
        """Return the filters as query-string pairs (empty ones left out), the inverse of from_args."""
        pairs = [("segment", self.segment), ("q", self.q), ("stage", self.stage), ("health", self.health)]
        pairs += [("tag", tag) for tag in self.tags]
        pairs += [("score_min", self.score_min), ("score_max", self.score_max), ("todo", self.open_todo),
                  ("owner", self.owner)]
        if with_sort and self.sort != DEFAULT_SORT:
            pairs.append(("sort", self.sort))
        return [(name, str(value)) for name, value in pairs if value not in (None, "")]

    @property
    def active(self) -> bool:
        """Whether any filter or search narrows the list."""
        return bool(self.to_args(with_sort=False))

    @property
    def beyond_search(self) -> bool:
        """Whether anything but the search box is set (a filter, or another sort)."""
        return self.sort != DEFAULT_SORT or any(name != "q" for name, _ in self.to_args(with_sort=False))


PHONE_QUERY = re.compile(r"^[\d\s+()./-]+$")


def _sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


def contains_text(column, text: str):
    """Return "column contains text, ignoring case" (the search box's and segments' rule)."""
    if _sqlite():
        # SQLite's LIKE already ignores (ASCII) case, as its lower() only knows ASCII: the same
        # matches at a third of the cost of lower() on every row.
        return column.contains(text, autoescape=True)
    return column.icontains(text, autoescape=True)


# The search index works on trigrams: it can narrow a search by fragments of 3 characters or more.
TRIGRAM = 3
_FTS = sa_table(search_index.FTS_TABLE, sa_column("rowid"), sa_column(search_index.FTS_TABLE))


def _indexable(fragment: str) -> bool:
    # The words come from search_text, which has taken out the NULs that would end FTS5's query early.
    return len(fragment) >= TRIGRAM


def _phone_fragment(digits: str) -> str:
    # "0151 234", "+49 151-234" and "0049151234" all find +49151234…: a national
    # trunk 0 or an international 00 is not part of the stored number.
    return digits.lstrip("0") or digits


def _word_options(contact, word: str) -> list:
    """Return "this word is in a name, the email or the company (or, all digits, the phone)"."""
    options = [contains_text(contact.first_name, word), contains_text(contact.last_name, word),
               contains_text(contact.email, word.lower()), contains_text(contact.company, word)]
    if word.isdigit() and len(word) >= 3:
        options.append(contact.phone.contains(_phone_fragment(word), autoescape=True))
    return options


def _fts_phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _candidates(words: list[str], phone: str | None):
    """Return a select of the ids of contacts the search index says may match (a superset of the
    matches), or None when no fragment is long enough for the index (the search then scans).

    The index narrows; the caller's exact conditions decide. That keeps the answers exactly those of
    the conditions (SQLite's LIKE folds only ASCII case, the trigram tokenizer folds all of Unicode)."""
    if phone is not None:
        fragments = [(None, phone)] if _indexable(phone) else []
    else:
        fragments = [(word, _phone_fragment(word) if word.isdigit() and len(word) >= 3 else None)
                     for word in words]
        # A word narrows only if every place it may match is indexable.
        fragments = [(word, digits) for word, digits in fragments
                     if _indexable(word) and (digits is None or _indexable(digits))]
    if not fragments:
        return None
    if _sqlite():
        terms = []
        for word, digits in fragments:
            options = []
            if word is not None:
                options.append("{" + " ".join(search_index.TEXT_COLUMNS) + "} : " + _fts_phrase(word))
            if digits is not None:
                options.append(f"{search_index.PHONE_COLUMN} : " + _fts_phrase(digits))
            terms.append("(" + " OR ".join(options) + ")")
        return select(_FTS.c.rowid).where(_FTS.c[search_index.FTS_TABLE].match(" AND ".join(terms)))
    # PostgreSQL: the same conditions on a second reading of contacts, answered by its trigram indexes.
    other = aliased(Contact)
    if phone is not None:
        return select(other.id).where(other.phone.contains(phone, autoescape=True))
    return select(other.id).where(*[or_(*_word_options(other, word)) for word, _digits in fragments])


def search_text(query: str | None) -> str:
    """The search box's text as the search reads it: without NUL characters (no stored text holds
    one, and PostgreSQL refuses them in a query), stripped."""
    return (query or "").replace("\x00", "").strip()


def search_condition(query: str, *, indexed: bool = True):
    """Return the WHERE clause for a search box: every word must match a name, email or company;
    a query that looks like a phone number matches the stored E.164 digits however it was typed.

    Fragments of 3 characters or more are looked up in the search index (FTS5 trigrams on SQLite,
    pg_trgm on PostgreSQL); shorter ones are checked on the rows the index found, or, when no
    fragment is that long (or indexed is false: the tests' reference), on every contact."""
    query = search_text(query)
    if not query:
        return true()
    # A shop's customer id ("7000012", "gid://shopify/Customer/7") finds its contact exactly.
    external_ids = select(ContactExternalId.contact_id).where(ContactExternalId.external_id == query)
    by_external_id = Contact.id.in_(external_ids)
    digits = re.sub(r"\D", "", query)
    words: list[str] = []
    phone = None
    if PHONE_QUERY.match(query) and len(digits) >= 3:
        phone = _phone_fragment(digits)
        exact = or_(Contact.phone.contains(phone, autoescape=True), by_external_id)
    else:
        words = query.split()[:8]
        exact = or_(and_(*[or_(*_word_options(Contact, word)) for word in words]), by_external_id)
    candidates = _candidates(words, phone) if indexed else None
    if candidates is None:
        return exact
    return and_(Contact.id.in_(union(candidates, external_ids)), exact)


def _with_open_todo():
    # An IN list read from the (status, due) index, not a lookup per contact.
    return Contact.id.in_(select(Task.contact_id).where(Task.status == "open"))


def filter_conditions(filters: ContactFilters, *, user_id: int | None = None, per_contact: bool = False) -> list:
    """Return the WHERE clauses the filters stand for (`per_contact`: a segment's, for checking a
    few given contacts; see segments.compile.where)."""
    conditions = [search_condition(filters.q)] if filters.q else []
    if filters.segment is not None:
        from crm.services.segments import store  # the segments package builds on this module

        conditions.append(store.segment_condition(filters.segment, per_contact=per_contact))
    if filters.stage:
        conditions.append(Contact.stage == filters.stage)
    if filters.health:
        conditions.append(Contact.health == filters.health)
    for tag in filters.tags:
        conditions.append(Contact.id.in_(
            select(contact_tags.c.contact_id).join(Tag, Tag.id == contact_tags.c.tag_id).where(Tag.name == tag)
        ))
    if filters.score_min is not None:
        conditions.append(Contact.lead_score >= filters.score_min)
    if filters.score_max is not None:
        conditions.append(Contact.lead_score <= filters.score_max)
    if filters.open_todo == "yes":
        conditions.append(_with_open_todo())
    elif filters.open_todo == "no":
        conditions.append(~_with_open_todo())
    if filters.owner == "none":
        conditions.append(Contact.owner_id.is_(None))
    elif filters.owner == "me":
        conditions.append(Contact.owner_id == user_id if user_id else false())
    elif filters.owner:
        conditions.append(Contact.owner_id == int(filters.owner))
    return conditions


def matching_ids(filters: ContactFilters, *, user_id: int | None = None):
    """Return a select of the ids of the contacts that match (no order), for set-based work."""
    return select(Contact.id).where(*filter_conditions(filters, user_id=user_id))


def ordered(filters: ContactFilters, *, user_id: int | None = None, reverse: bool = False):
    """Return a select of the matching contacts in the filters' sort order."""
    return (
        select(Contact)
        .where(*filter_conditions(filters, user_id=user_id))
        .order_by(*_order_by(SORTS[filters.sort], reverse=reverse))
    )


def count(filters: ContactFilters, *, user_id: int | None = None, cap: int = COUNT_CAP) -> int:
    """Return how many contacts match, counting no further than cap + 1."""
    if not filters.active:
        # The whole table: one index scan, cheap whatever the size.
        return db.session.scalar(select(func.count()).select_from(Contact)) or 0
    limited = matching_ids(filters, user_id=user_id).limit(cap + 1).subquery()
    return db.session.scalar(select(func.count()).select_from(limited)) or 0


# ---------------------------------------------------------------------------
# Keyset pages

def encode_cursor(values: list[Any]) -> str:
    """Return an opaque, URL-safe cursor for a row's sort values."""
    plain = [v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, Decimal) else v for v in values]
    raw = json.dumps(plain, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> list[Any] | None:
    """Return the JSON list inside a cursor, or None when it is missing or not one of ours."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = parse_json(raw, max_depth=2)
    except ValueError:  # includes BadJson and binascii.Error
        return None
    return values if isinstance(values, list) else None


def _typed(key: SortKey, value: Any) -> Any:
    """Return a cursor value as the Python type of its column, or raise ValueError."""
    if value is None:
        if not key.nullable:
            raise ValueError("null in a not-null sort column")
        return None
    column_type = key.column.type
    python_type = getattr(column_type, "impl_instance", column_type).python_type
    if python_type is datetime:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
        if when is None or when.tzinfo is None:
            raise ValueError("naive datetime")
        return when
    if python_type is Decimal:
        try:
            amount = Decimal(value)
        except (InvalidOperation, TypeError) as error:
            raise ValueError(str(error)) from error
        if not amount.is_finite() or abs(amount) >= 10**12:
            raise ValueError("out of range")
        return amount
    if python_type is int:
        return check_int(value)
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def _sort_values(sort: Sort, cursor: str | None) -> list[Any] | None:
    values = decode_cursor(cursor)
    if values is None or len(values) != len(sort.keys):
        return None
    try:
        return [_typed(key, value) for key, value in zip(sort.keys, values, strict=True)]
    except (ValueError, TypeError):
        return None


def _sort_column(key: SortKey, by_index: bool):
    """Return a sort column, or on SQLite one its planner will not read through an index
    (a unary +), for when there are few matches: reading the whole sort index to find them
    costs far more than sorting them, and SQLite cannot tell."""
    if by_index or not _sqlite():
        return key.column
    return literal_column(f"+{key.column.table.name}.{key.column.name}", type_=key.column.type)


def _order_by(sort: Sort, *, reverse: bool = False, by_index: bool = True) -> list:
    """Return the ORDER BY clauses of a sort, NULLs last in the shown order."""
    clauses = []
    for key in sort.keys:
        descending = key.descending != reverse
        column = _sort_column(key, by_index)
        clause = column.desc() if descending else column.asc()
        if key.nullable:
            # Contacts without a value come last in the shown order, whatever the database's default.
            clause = clause.nulls_first() if reverse else clause.nulls_last()
        clauses.append(clause)
    return clauses


def sort_clauses(name: str = DEFAULT_SORT, *, by_index: bool = True) -> list:
    """Return the ORDER BY clauses of a named sort (the list's order, for previews); see
    _sort_column for by_index."""
    return _order_by(SORTS[name], by_index=by_index)


def _beyond(column, key: SortKey, value: Any, *, backwards: bool):
    """Return the condition "the column comes strictly after value" in the shown order
    (strictly before it when going backwards); NULLs come last."""
    if value is None:
        return column.isnot(None) if backwards else false()
    later = column < value if key.descending else column > value
    earlier = column > value if key.descending else column < value
    if backwards:
        return earlier
    return or_(later, column.is_(None)) if key.nullable else later


def keyset_condition(sort: Sort, values: list[Any], *, backwards: bool = False, by_index: bool = True):
    """Return the WHERE clause for the rows after (or before) the row with these sort values.
    A not-null first column is also bounded on its own (implied by the alternatives), so that the
    sort's index is read from the cursor on, not from its start."""
    columns = [_sort_column(key, by_index) for key in sort.keys]
    alternatives = []
    for index, key in enumerate(sort.keys):
        same = [columns[i].is_(None) if values[i] is None else columns[i] == values[i] for i in range(index)]
        alternatives.append(and_(*same, _beyond(columns[index], key, values[index], backwards=backwards)))
    first = sort.keys[0]
    if first.nullable or values[0] is None:
        return or_(*alternatives)
    bound = columns[0] <= values[0] if first.descending != backwards else columns[0] >= values[0]
    return and_(bound, or_(*alternatives))


def cursor_for(sort: Sort, contact: Contact) -> str:
    """Return the cursor that points at this contact in this sort."""
    return encode_cursor([getattr(contact, key.column.key) for key in sort.keys])


@dataclass
class ContactPage:
    """One page of the contact list, with cursors to the pages around it."""

    filters: ContactFilters
    contacts: list[Contact]
    total: int | None  # None: not counted with the page (see page)
    open_todos: dict[int, int] = field(default_factory=dict)
    next_cursor: str | None = None
    prev_cursor: str | None = None
    size: int = PAGE_SIZE

    @property
    def total_is_capped(self) -> bool:
        return self.total is not None and self.total > COUNT_CAP


def page(filters: ContactFilters, *, after: str | None = None, before: str | None = None,
         size: int = PAGE_SIZE, user_id: int | None = None, counted: bool = True) -> ContactPage:
    """Return a page of matching contacts with their owner and tags, in three queries
    (count, rows with owner, tags) whatever the number of contacts.

    Not `counted` (a list narrowed by a saved segment), the page leaves `total` None and does not
    wait for the count: the contacts are walked in the sort order (`_walked_rows`), so the first
    page of a segment of any size costs about what its 50 rows cost; the count comes apart
    (`count`)."""
    sort = SORTS[filters.sort]
    after_values = _sort_values(sort, after)
    before_values = None if after_values is not None else _sort_values(sort, before)
    backwards = before_values is not None
    cursor = after_values if after_values is not None else before_values
    total = None
    if counted:
        total = count(filters, user_id=user_id)
        # Few matches (an exact count under the cap) are found by the filters and then sorted.
        by_index = total > COUNT_CAP or not filters.active
        # Nothing matches (a search being typed, say): the count already read every row.
        rows = _rows(filter_conditions(filters, user_id=user_id), sort, cursor, backwards=backwards,
                     by_index=by_index, size=size) if total else []
    else:
        rows = _walked_rows(filters, sort, cursor, backwards=backwards, size=size, user_id=user_id)
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    contacts = [row[0] for row in rows]
    result = ContactPage(filters=filters, contacts=contacts, total=total, size=size,
                         open_todos={row[0].id: row[1] for row in rows})
    if contacts:
        has_next = more if not backwards else True
        has_prev = more if backwards else after_values is not None
        result.next_cursor = cursor_for(sort, contacts[-1]) if has_next else None
        result.prev_cursor = cursor_for(sort, contacts[0]) if has_prev else None
    return result


def _rows(conditions: list, sort: Sort, cursor: list[Any] | None, *, backwards: bool, by_index: bool,
          size: int) -> list:
    """Return up to size + 1 (contact, open to-dos) rows after (before) the cursor in the sort."""
    open_count = (
        select(func.count()).where(Task.contact_id == Contact.id, Task.status == "open")
        .correlate(Contact).scalar_subquery()
    )
    query = (
        select(Contact, open_count)
        .where(*conditions)
        .options(joinedload(Contact.owner), selectinload(Contact.tags))
        .order_by(*_order_by(sort, reverse=backwards, by_index=by_index))
        .limit(size + 1)
    )
    if cursor is not None:
        query = query.where(keyset_condition(sort, cursor, backwards=backwards, by_index=by_index))
    return list(db.session.execute(query).unique().all())


# How many contacts, in the sort order, a walked page checks at a time: a first window, then a
# wider one, and past that it finds every match and sorts them (a rare segment, under about one
# contact in 80). Checking a contact costs about 10 µs at 1,000,000 orders.
WALK_WINDOWS = (500, 4_000)


def _walked_rows(filters: ContactFilters, sort: Sort, cursor: list[Any] | None, *, backwards: bool, size: int,
                 user_id: int | None) -> list:
    """Return up to size + 1 rows of the list without counting the matches first (see `walk`)."""
    return walk(filter_conditions(filters, user_id=user_id, per_contact=True),
                lambda: filter_conditions(filters, user_id=user_id),
                lambda conditions, by_index, with_cursor: _rows(conditions, sort, cursor if with_cursor else None,
                                                               backwards=backwards, by_index=by_index, size=size),
                sort, cursor, backwards=backwards, wanted=size + 1)


def walk(per_contact: list, conditions: Callable[[], list], fetch: Callable[[list, bool, bool], list], sort: Sort,
         cursor: list[Any] | None = None, *, backwards: bool = False, wanted: int) -> list:
    """Return the first `wanted` contacts (rows, as `fetch` reads them) after the cursor in the
    sort that meet the conditions, without finding every match first: the next contacts in the
    sort order (a window read from the sort's index, from the cursor) are checked one by one
    (`per_contact`: the conditions for a few given contacts, e.g. a product looked up in each
    contact's orders' lines). When the window holds `wanted` matches, or holds the last contacts
    there are, that is the answer; otherwise a wider window is tried, then the matches are taken
    as rare: found by `conditions()` and sorted. Each way gives the same rows.

    fetch(conditions, by_index, with_cursor) reads the rows in the sort order (reversed when
    going backwards), at most `wanted`."""
    for width in WALK_WINDOWS:
        window = select(Contact.id).order_by(*_order_by(sort, reverse=backwards)).limit(width).correlate(None)
        if cursor is not None:
            window = window.where(keyset_condition(sort, cursor, backwards=backwards))
        rows = fetch([*per_contact, Contact.id.in_(window)], False, False)
        if len(rows) >= wanted:
            return rows
        if (db.session.scalar(select(func.count()).select_from(window.subquery())) or 0) < width:
            return rows
    return fetch(conditions(), False, True)


def tag_names(limit: int = 500) -> list[str]:
    """Return the names of the tags in use, for filter choices and suggestions."""
    return list(db.session.scalars(select(Tag.name).order_by(Tag.name).limit(limit)))


def owner_choices() -> list[User]:
    """Return the active users who can own contacts (everyone but viewers), by name."""
    return list(db.session.scalars(
        select(User).where(User.active.is_(True), User.role != "viewer").order_by(User.name)
    ))


# ---------------------------------------------------------------------------
# The timeline: orders, interactions, stage changes and to-dos, newest first

# Ties on the same instant are broken by kind, then id, so the order is total.
TIMELINE_RANKS = {"interaction": 3, "order": 2, "task": 1, "stage": 0}


@dataclass
class TimelineItem:
    kind: str  # interaction, order, task, stage
    at: datetime
    id: int
    record: Any
    changed_by: str | None = None  # who moved a stage by hand

    @property
    def key(self) -> tuple[datetime, int, int]:
        return (self.at, TIMELINE_RANKS[self.kind], self.id)


@dataclass
class TimelinePage:
    items: list[TimelineItem]
    next_cursor: str | None


def _timeline_cursor(cursor: str | None) -> tuple[datetime, int, int] | None:
    values = decode_cursor(cursor)
    try:
        at, rank, item_id = values  # type: ignore[misc]
        at = datetime.fromisoformat(at)
        if at.tzinfo is None:
            return None
        return at, check_int(rank), check_int(item_id)
    except (TypeError, ValueError):
        return None


def _older_than(column, id_column, rank: int, cursor: tuple[datetime, int, int] | None):
    if cursor is None:
        return true()
    at, cursor_rank, item_id = cursor
    if rank < cursor_rank:
        return column <= at
    if rank > cursor_rank:
        return column < at
    return or_(column < at, and_(column == at, id_column < item_id))


def timeline(contact_id: int, *, cursor: str | None = None, size: int = TIMELINE_PAGE_SIZE) -> TimelinePage:
    """Return a page of a contact's history, newest first, in five queries whatever its length:
    one per source (each reading at most size + 1 rows by index) and one for order lines."""
    position = _timeline_cursor(cursor)
    limit = size + 1
    sources = (
        ("interaction", Interaction, Interaction.occurred_at, [joinedload(Interaction.author)]),
        ("order", Order, Order.placed_at, [selectinload(Order.lines)]),
        ("task", Task, Task.created_at, [joinedload(Task.assignee)]),
    )
    items: list[TimelineItem] = []
    for kind, model, at_column, options in sources:
        query = (
            select(model).where(model.contact_id == contact_id,
                                _older_than(at_column, model.id, TIMELINE_RANKS[kind], position))
            .options(*options).order_by(at_column.desc(), model.id.desc()).limit(limit)
        )
        for record in db.session.scalars(query).unique():
            items.append(TimelineItem(kind, getattr(record, at_column.key), record.id, record))
    stage_rows = db.session.execute(
        select(StageChange, User.name).outerjoin(User, User.id == StageChange.changed_by_id)
        .where(StageChange.contact_id == contact_id,
               _older_than(StageChange.changed_at, StageChange.id, TIMELINE_RANKS["stage"], position))
        .order_by(StageChange.changed_at.desc(), StageChange.id.desc()).limit(limit)
    ).all()
    items += [TimelineItem("stage", change.changed_at, change.id, change, changed_by=name) for change, name in stage_rows]
    items.sort(key=lambda item: item.key, reverse=True)
    more = len(items) > size
    items = items[:size]
    next_cursor = None
    if more and items:
        at, rank, item_id = items[-1].key
        next_cursor = encode_cursor([at, rank, item_id])
    return TimelinePage(items, next_cursor)


def timeline_item(kind: str, record: Any) -> TimelineItem:
    """Return one record as a timeline item (a freshly logged interaction, say)."""
    at = {"interaction": "occurred_at", "order": "placed_at", "task": "created_at", "stage": "changed_at"}[kind]
    return TimelineItem(kind, getattr(record, at), record.id, record)


def contact_exists(contact_id: int) -> bool:
    """Return whether there is a contact with this id."""
    return db.session.scalar(select(Contact.id).where(Contact.id == contact_id)) is not None


def contact_for_page(contact_id: int) -> Contact | None:
    """Return a contact with its owner, tags and external ids loaded, or None."""
    return db.session.scalars(
        select(Contact).where(Contact.id == contact_id)
        .options(joinedload(Contact.owner), selectinload(Contact.tags), selectinload(Contact.external_ids))
    ).unique().one_or_none()


def merge_candidates(contact: Contact, query: str, limit: int = 10) -> list[Contact]:
    """Return contacts a search finds that could be merged into this one (not itself)."""
    if not search_text(query):
        return []
    return list(db.session.scalars(
        select(Contact).where(search_condition(query), Contact.id != contact.id)
        .order_by(*_order_by(SORTS[DEFAULT_SORT])).limit(limit)
    ))


def search_contacts(q: str | None = None, *, stage: str | None = None, after_id: int | None = None,
                    limit: int = 50) -> list[Contact]:
    """Return up to `limit` contacts in id order after `after_id` (the API's keyset page), matched by
    the same search rule as the contact list, with tags and external ids loaded. Erased contacts are left out."""
    query = (select(Contact).where(Contact.erased_at.is_(None), search_condition(q or ""))
             .order_by(Contact.id).limit(limit)
             .options(selectinload(Contact.tags), selectinload(Contact.external_ids)))
    if stage:
        query = query.where(Contact.stage == stage)
    if after_id is not None:
        query = query.where(Contact.id > after_id)
    return list(db.session.scalars(query))

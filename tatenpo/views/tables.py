"""Server-side paging for the big tables (商品・在庫, 販売データ): LIMIT/OFFSET over an indexed order, with
the filters kept in every page link.

The tables' statements are built once per shape of filters (`statement_for`) and run with the values as
parameters; the count and the page statements derived from them are built once too. At 16 staff paging
through 100,000 rows, rebuilding and re-keying them on every request cost as much as running them.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from flask import request, url_for
from sqlalchemy import Integer, bindparam, func, literal_column, select

from tatenpo.platform.extensions import db
from tatenpo.stock.search import plan as search_plan
from tatenpo.stock.search import search_params
from tatenpo.sync import listing_state

PER_PAGE_CHOICES = (50, 100, 200)

# A search over 100,000 rows cannot use an index (it matches inside the text), so counting every match
# would scan the whole table on each page view. Counting stops here and the page says “2,000件以上”.
COUNT_CAP = 2000


@dataclass
class Page:
    items: list
    number: int
    per_page: int
    total: int
    endpoint: str
    args: dict
    capped: bool = False  # total is COUNT_CAP and there are more
    _url_prefix: str | None = field(default=None, repr=False, compare=False)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first_index(self) -> int:
        return 0 if not self.items else (self.number - 1) * self.per_page + 1

    @property
    def last_index(self) -> int:
        if self.capped:
            return (self.number - 1) * self.per_page + len(self.items)
        return min(self.total, self.number * self.per_page)

    @property
    def has_next(self) -> bool:
        return self.number < self.pages or (self.capped and len(self.items) == self.per_page)

    def url(self, number: int) -> str:
        """The address of page `number`, the filters kept (the pager asks for a dozen of them)."""
        if self._url_prefix is None:
            address = url_for(self.endpoint, **self.args)
            self._url_prefix = address + ("&" if "?" in address else "?") + "page="
        return f"{self._url_prefix}{number}"

    def window(self, around: int = 2) -> list[int]:
        """Page numbers to offer: the first, the last, and a few around the current one."""
        numbers = {1, *range(self.number - around, self.number + around + 1)}
        if not self.capped:
            numbers.add(self.pages)
        last = max(self.pages, self.number) if self.capped else self.pages
        return sorted(n for n in numbers if 1 <= n <= last)


def table_filters() -> dict:
    """The filters of a big table, from the query string: search text, store, linked or not, sync state."""
    return {
        "q": (request.args.get("q") or "").strip(),
        "store": request.args.get("store", type=int),
        "link": request.args.get("link") if request.args.get("link") in ("linked", "unlinked") else None,
        "state": request.args.get("state") if request.args.get("state") in listing_state.FILTERS else None,
    }


def shaped(build, filters: dict) -> tuple:
    """The statement for these filters — `build(search, by_store, link, state)`, a `statement_for`, says which
    filters are set — and the parameters that carry their values (`q_text`/`q_like`, `store_id`)."""
    params = search_params(filters["q"]) if filters["q"] else {}
    if filters["store"]:
        params["store_id"] = filters["store"]
    # A search is a shape of its own per plan (stock.search.plan: in few rows or in many), truthy either way.
    search = search_plan(filters["q"], db.session.connection()) if filters["q"] else None
    return build(search, bool(filters["store"]), filters["link"], filters["state"]), params


def statement_for(build):
    """`build(*shape)`, memoised: the statement of one shape of a table's filters (which filters are set, not
    their values), built once per process."""
    return functools.lru_cache(maxsize=64)(build)


@functools.lru_cache(maxsize=256)
def _count_statement(statement, capped: bool):
    counted = statement.order_by(None).with_only_columns(literal_column("1"), maintain_column_froms=True)
    if capped:
        counted = counted.limit(COUNT_CAP + 1)
    return select(func.count()).select_from(counted.subquery())


@functools.lru_cache(maxsize=256)
def _page_statement(statement):
    return statement.limit(bindparam("page_limit", type_=Integer())).offset(bindparam("page_offset", type_=Integer()))


def _entities(statement, params: dict) -> list:
    return list(db.session.scalars(statement, params).unique().all())


def paginate(statement, endpoint: str, args: dict, filtered: bool = False, load=_entities,
             params: dict | None = None, counted: int | None = None) -> Page:
    """One page of the statement's rows (run with `params`), as `load(page's statement, params)` reads them —
    by default the ORM objects it selects. With `filtered`, the count stops at COUNT_CAP matches; `counted`
    is the count when the caller has it already (capped the same way: a search index's, stock.search.planned).

    `statement` is one built once (a `statement_for`'s): the count and page statements derived from it are
    kept per statement object."""
    params = dict(params or {})
    per_page = request.args.get("per", 50, type=int)
    if per_page not in PER_PAGE_CHOICES:
        per_page = PER_PAGE_CHOICES[0]
    if counted is None:
        counted = db.session.connection().execute(_count_statement(statement, filtered), params).scalar() or 0
    total = counted
    capped = filtered and total > COUNT_CAP
    total = min(total, COUNT_CAP) if capped else total
    pages = max(1, -(-total // per_page))
    number = max(1, request.args.get("page", 1, type=int) or 1)
    if not capped:
        number = min(number, pages)
    params.update(page_limit=per_page, page_offset=(number - 1) * per_page)
    items = load(_page_statement(statement), params)
    kept = {k: v for k, v in args.items() if v not in (None, "")}
    if per_page != PER_PAGE_CHOICES[0]:
        kept["per"] = per_page
    return Page(items=list(items), number=number, per_page=per_page, total=total, endpoint=endpoint, args=kept,
                capped=capped)


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"

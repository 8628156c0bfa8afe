"""Server-side paging for the big tables (商品・在庫, 販売データ): LIMIT/OFFSET over an indexed order, with
the filters kept in every page link."""
from __future__ import annotations

from dataclasses import dataclass

from flask import request, url_for
from sqlalchemy import func, literal_column, select

from ..extensions import db

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
        return url_for(self.endpoint, **{**self.args, "page": number})

    def window(self, around: int = 2) -> list[int]:
        """Page numbers to offer: the first, the last, and a few around the current one."""
        numbers = {1, *range(self.number - around, self.number + around + 1)}
        if not self.capped:
            numbers.add(self.pages)
        last = max(self.pages, self.number) if self.capped else self.pages
        return sorted(n for n in numbers if 1 <= n <= last)


def _entities(statement) -> list:
    return list(db.session.scalars(statement).unique().all())


def paginate(statement, endpoint: str, args: dict, filtered: bool = False, load=_entities) -> Page:
    """One page of the statement's rows, as `load(statement)` reads them (by default the ORM objects it
    selects). With `filtered`, the count stops at COUNT_CAP matches."""
    per_page = request.args.get("per", 50, type=int)
    if per_page not in PER_PAGE_CHOICES:
        per_page = PER_PAGE_CHOICES[0]
    counted = statement.order_by(None).with_only_columns(literal_column("1"), maintain_column_froms=True)
    if filtered:
        counted = counted.limit(COUNT_CAP + 1)
    total = db.session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    capped = filtered and total > COUNT_CAP
    total = min(total, COUNT_CAP) if capped else total
    pages = max(1, -(-total // per_page))
    number = max(1, request.args.get("page", 1, type=int) or 1)
    if not capped:
        number = min(number, pages)
    items = load(statement.limit(per_page).offset((number - 1) * per_page))
    kept = {k: v for k, v in args.items() if v not in (None, "")}
    if per_page != PER_PAGE_CHOICES[0]:
        kept["per"] = per_page
    return Page(items=list(items), number=number, per_page=per_page, total=total, endpoint=endpoint, args=kept,
                capped=capped)


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def safe_next(target: str | None, fallback: str) -> str:
    # Only same-site paths, so a crafted link cannot bounce the user elsewhere after saving.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return fallback

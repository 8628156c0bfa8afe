"""Finding products and listings by what the shop types: the typed text, folded like the rows' search_text
(models.search_key: half-/full-width and case do not matter), anywhere inside it.

Both sides are folded already, so an exact substring test is the whole rule. SQLite's instr() does it in
about half the time of LIKE '%…%' (which also folds ASCII case, needlessly) — the difference between a
search page that keeps up with 16 shop staff and one that queues. PostgreSQL keeps LIKE, which its planner
estimates well (strpos() made a rare code's search slower there) and which a trigram index serves: where
pg_trgm is allowed, a migration adds one on each search_text (TRIGRAM_INDEXES), so a rare code or a word
found nowhere is found without reading every row.
"""
from __future__ import annotations

from sqlalchemy import Boolean, String, bindparam, literal, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from tatenpo.models import search_key

# Created by a migration on PostgreSQL when pg_trgm can be; not in the models (one backend, optional).
TRIGRAM_INDEXES = frozenset({"ix_products_search_trgm", "ix_listings_search_trgm"})


def in_models(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's include_object: leave the optional trigram indexes out of the comparison with the models."""
    return not (type_ == "index" and reflected and name in TRIGRAM_INDEXES)


class _Contains(FunctionElement):
    """(search_text column, the folded text, the same escaped for LIKE): the column contains the text."""

    type = Boolean()
    inherit_cache = True
    name = "tatenpo_contains"


def matches(column, typed: str | None = None, *, key: str = "q"):
    """The condition “`column` (a search_text column) contains what the shop typed”.

    Without `typed`, the text is left to the execution: `statement` runs with `search_params(typed, key)`.
    A page that builds its statement once per shape of filters uses that form, so SQLAlchemy neither
    rebuilds nor re-keys it on every request."""
    if typed is None:
        return _Contains(column, bindparam(f"{key}_text", type_=String()), bindparam(f"{key}_like", type_=String()))
    text, escaped = _folded(typed)
    return _Contains(column, literal(text), literal(escaped))


def search_params(typed: str, key: str = "q") -> dict[str, str]:
    """The execution parameters of `matches(column, key=key)` for what the shop typed."""
    text, escaped = _folded(typed)
    return {f"{key}_text": text, f"{key}_like": escaped}


def _folded(typed: str) -> tuple[str, str]:
    """The typed text folded like search_text, and the same escaped for LIKE."""
    text = search_key(typed)
    return text, text.replace("/", "//").replace("%", "/%").replace("_", "/_")


@compiles(_Contains)
def _like(element, compiler, **kw):
    # What column.contains(text, autoescape=True) renders, around the statement's own (escaped) parameter.
    column, _text, escaped = element.clauses
    return compiler.process(column.like(literal_column("'%'") + escaped + literal_column("'%'"), escape="/"), **kw)


@compiles(_Contains, "sqlite")
def _instr(element, compiler, **kw):
    column, text, _escaped = element.clauses
    return f"instr({compiler.process(column, **kw)}, {compiler.process(text, **kw)}) > 0"

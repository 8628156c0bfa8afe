"""Finding products and listings by what the shop types: the typed text, folded like the rows' search_text
(models.search_key: half-/full-width and case do not matter), anywhere inside it.

Both sides are folded already, so an exact substring test is the whole rule. SQLite's instr() does it in
about half the time of LIKE '%…%' (which also folds ASCII case, needlessly) — the difference between a
search page that keeps up with 16 shop staff and one that queues. PostgreSQL keeps LIKE, which its planner
estimates well (strpos() made a rare code's search slower there).
"""
from __future__ import annotations

from sqlalchemy import Boolean, literal, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from .models import search_key


class _Contains(FunctionElement):
    """(search_text column, the folded text, the same escaped for LIKE): the column contains the text."""

    type = Boolean()
    inherit_cache = True
    name = "tatenpo_contains"


def matches(column, typed: str):
    """The condition “`column` (a search_text column) contains what the shop typed”."""
    text = search_key(typed)
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return _Contains(column, literal(text), literal(escaped))


@compiles(_Contains)
def _like(element, compiler, **kw):
    # What column.contains(text, autoescape=True) renders, around the statement's own (escaped) parameter.
    column, _text, escaped = element.clauses
    return compiler.process(column.like(literal_column("'%'") + escaped + literal_column("'%'"), escape="/"), **kw)


@compiles(_Contains, "sqlite")
def _instr(element, compiler, **kw):
    column, text, _escaped = element.clauses
    return f"instr({compiler.process(column, **kw)}, {compiler.process(text, **kw)}) > 0"

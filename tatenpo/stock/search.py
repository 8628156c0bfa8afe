"""Finding products and listings by what the shop types: the typed text, folded like the rows' search_text
(models.search_key: half-/full-width and case do not matter), anywhere inside it.

Both sides are folded already, so an exact substring test is the whole rule. How to find the rows depends on
how many there are:
- many (a word every fifth product has): read the table in its order (by code) and test each row; a page of
  fifty is found after a few hundred rows. SQLite's instr() does the test in about half the time of
  LIKE '%…%'. PostgreSQL keeps LIKE, which its planner estimates well and a trigram index serves.
- few (one code the shop is looking for, a word found nowhere): reading in order would read every row, twice
  per page (the count and the page). A trigram index finds them directly: on PostgreSQL a GIN pg_trgm index
  on each search_text where the extension is allowed (TRIGRAM_INDEXES, migration 3b7d2f9c41a6), and its own
  planner chooses; on SQLite an FTS5 table with the trigram tokenizer beside products (PRODUCTS_FTS, kept by
  triggers, created by migration fa4b5c6d7e8f and by create_all alike), and `plan` chooses: it asks the index
  whether the text is in more rows than a capped count shows (views.tables.COUNT_CAP), which costs well
  under a millisecond either way.
A text shorter than three characters has no trigram: it is always tested row by row.
"""
from __future__ import annotations

import weakref

from sqlalchemy import DDL, Boolean, String, bindparam, event, literal, literal_column, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from tatenpo.models import Product, search_key

# Created by a migration on PostgreSQL when pg_trgm can be; not in the models (one backend, optional).
TRIGRAM_INDEXES = frozenset({"ix_products_search_trgm", "ix_listings_search_trgm"})

# SQLite: products' search_text in an FTS5 trigram index (https://sqlite.org/fts5.html#the_trigram_tokenizer),
# an "external content" table that reads the text from products itself; the triggers keep it in step. Exact
# (case_sensitive 1): search_text is folded already, and the index must not fold it further.
PRODUCTS_FTS = "products_fts"
PRODUCTS_FTS_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {PRODUCTS_FTS} USING fts5(search_text, content='products', "
    "content_rowid='id', tokenize='trigram case_sensitive 1')",
    f"CREATE TRIGGER IF NOT EXISTS {PRODUCTS_FTS}_insert AFTER INSERT ON products BEGIN "
    f"INSERT INTO {PRODUCTS_FTS}(rowid, search_text) VALUES (new.id, new.search_text); END",
    f"CREATE TRIGGER IF NOT EXISTS {PRODUCTS_FTS}_delete AFTER DELETE ON products BEGIN "
    f"INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
    f"CREATE TRIGGER IF NOT EXISTS {PRODUCTS_FTS}_update AFTER UPDATE OF search_text ON products BEGIN "
    f"INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
    f"INSERT INTO {PRODUCTS_FTS}(rowid, search_text) VALUES (new.id, new.search_text); END",
)
# Filling the index from the rows already there (the migration, on a database with products).
PRODUCTS_FTS_REBUILD = f"INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}) VALUES ('rebuild')"

# products.search_text's B-tree, one per database. SQLite: with the code, so a page of a search tested row by
# row (MANY: pages in code order, each row tested) reads this index alone and the table only for the page's
# rows (stock.table reads a page's ids first): reading the table for every row tested cost twice as much, and
# page 40 of a common word tests ~10,000 rows. The capped counts read it as they read the search text alone
# before. PostgreSQL: the search text alone (its trigram indexes find the rows; its index entries are capped at
# 2,704 bytes, which a long code and search text together could pass). Not in the models, so alembic's
# comparison leaves them out (in_models); created by the migrations (5e2d7c9a4b18 on SQLite) and by
# create_all alike.
PRODUCTS_BY_CODE = "ix_products_code_search_text"
SEARCH_TEXT_INDEXES = {  # dialect: (name, DDL)
    "sqlite": (PRODUCTS_BY_CODE, f"CREATE INDEX IF NOT EXISTS {PRODUCTS_BY_CODE} ON products (code, search_text)"),
    "postgresql": ("ix_products_search_text",
                   "CREATE INDEX IF NOT EXISTS ix_products_search_text ON products (search_text)"),
}

# create_all builds what the migration builds (the tests' schemas, `flask setup` on a new file); drop_all
# removes it first (an external-content index must not outlive its table). The triggers go with the table.
for _statement in PRODUCTS_FTS_DDL:
    event.listen(Product.__table__, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
for _dialect, (_name, _statement) in SEARCH_TEXT_INDEXES.items():
    event.listen(Product.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect))
event.listen(Product.__table__, "before_drop", DDL(f"DROP TABLE IF EXISTS {PRODUCTS_FTS}").execute_if(dialect="sqlite"))

_SEARCH_TEXT_INDEX_NAMES = frozenset(name for name, _ in SEARCH_TEXT_INDEXES.values())

# What `plan` answers: the typed text is in many rows (test them in order) or in few (look them up).
MANY = "many"
FEW = "few"
FEW_ROWS = 2000  # = views.tables.COUNT_CAP: up to here, the count and the page read only the matches


def in_models(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's include_object: leave the optional trigram indexes, the search texts' B-trees (one per
    database), and SQLite's FTS5 table with its shadow tables, out of the comparison with the models."""
    if type_ == "index" and reflected and (name in TRIGRAM_INDEXES or name in _SEARCH_TEXT_INDEX_NAMES):
        return False
    return not (type_ == "table" and reflected and name.startswith(PRODUCTS_FTS))


class _Contains(FunctionElement):
    """(search_text column, the folded text, the same escaped for LIKE): the column contains the text."""

    type = Boolean()
    inherit_cache = True
    name = "tatenpo_contains"


class _ContainsIndexed(FunctionElement):
    """(products.id, products.search_text, the folded text, the FTS5 phrase, the LIKE pattern): the same test,
    the rows looked up in the trigram index first."""

    type = Boolean()
    inherit_cache = True
    name = "tatenpo_contains_indexed"


def matches(column, typed: str | None = None, *, key: str = "q", indexed: bool = False):
    """The condition “`column` (a search_text column) contains what the shop typed”.

    Without `typed`, the text is left to the execution: `statement` runs with `search_params(typed, key)`.
    A page that builds its statement once per shape of filters uses that form, so SQLAlchemy neither
    rebuilds nor re-keys it on every request. `indexed` (products' search_text only, when `plan` said FEW):
    the rows are looked up in the trigram index rather than tested one by one."""
    if typed is None:
        text_, escaped = bindparam(f"{key}_text", type_=String()), bindparam(f"{key}_like", type_=String())
        phrase = bindparam(f"{key}_phrase", type_=String())
    else:
        folded, like = _folded(typed)
        text_, escaped, phrase = literal(folded), literal(like), literal(_phrase(folded))
    if indexed:
        if column is not Product.search_text:
            raise ValueError("only products' search_text has a trigram index")
        return _ContainsIndexed(Product.id, column, text_, phrase, escaped)
    return _Contains(column, text_, escaped)


def search_params(typed: str, key: str = "q") -> dict[str, str]:
    """The execution parameters of `matches(column, key=key)` for what the shop typed."""
    folded, escaped = _folded(typed)
    return {f"{key}_text": folded, f"{key}_like": escaped, f"{key}_phrase": _phrase(folded)}


def plan(typed: str, connection) -> str:
    """FEW when products' trigram index shows the typed text in at most FEW_ROWS products (SQLite; the
    statement then reads those rows only), else MANY. PostgreSQL's planner makes this choice itself."""
    return planned(typed, connection)[0]


def planned(typed: str, connection) -> tuple[str, int | None]:
    """`plan`, and how many products contain the typed text as the index counted them, up to FEW_ROWS + 1
    (exact up to FEW_ROWS: a trigram phrase of three characters or more matches exactly the substrings);
    None where the index cannot say (PostgreSQL, a database without it, a text under three characters). A
    search that is the page's only filter needs no count of its own then."""
    folded = search_key(typed)
    if connection.dialect.name != "sqlite" or len(folded) < 3 or not _has_index(connection):
        return MANY, None
    found = connection.execute(
        text(f"SELECT count(*) FROM (SELECT 1 FROM {PRODUCTS_FTS} WHERE {PRODUCTS_FTS} MATCH :phrase LIMIT :cap)"),
        {"phrase": _phrase(folded), "cap": FEW_ROWS + 1},
    ).scalar()
    return (FEW if found <= FEW_ROWS else MANY), found


# The engines whose database has the index: once found it stays (only a downgrade drops it), so each process
# asks the schema once per engine rather than on every search. A database without it is asked again on the
# next search: the migration may reach it while the app runs.
_INDEXED_ENGINES: weakref.WeakSet = weakref.WeakSet()


def _has_index(connection) -> bool:
    # A database the migration has not reached yet searches as before.
    engine = connection.engine
    if engine in _INDEXED_ENGINES:
        return True
    found = connection.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": PRODUCTS_FTS}
    ).first() is not None
    if found:
        _INDEXED_ENGINES.add(engine)
    return found


def _folded(typed: str) -> tuple[str, str]:
    """The typed text folded like search_text, and the same escaped for LIKE."""
    folded = search_key(typed)
    return folded, folded.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _phrase(folded: str) -> str:
    """The folded text as one FTS5 phrase: every character literal, a double quote doubled."""
    return '"' + folded.replace('"', '""') + '"'


def _like_of(column, escaped):
    # What column.contains(text, autoescape=True) renders, around the statement's own (escaped) parameter.
    return column.like(literal_column("'%'") + escaped + literal_column("'%'"), escape="/")


@compiles(_Contains)
def _like(element, compiler, **kw):
    column, _text, escaped = element.clauses
    return compiler.process(_like_of(column, escaped), **kw)


@compiles(_Contains, "sqlite")
def _instr(element, compiler, **kw):
    column, text_, _escaped = element.clauses
    return f"instr({compiler.process(column, **kw)}, {compiler.process(text_, **kw)}) > 0"


@compiles(_ContainsIndexed)
def _like_indexed(element, compiler, **kw):
    _id, column, _text, _phrase_, escaped = element.clauses
    return compiler.process(_like_of(column, escaped), **kw)


@compiles(_ContainsIndexed, "sqlite")
def _fts(element, compiler, **kw):
    # The index finds the candidates; instr() keeps the rule exactly the row-by-row one.
    id_, column, text_, phrase, _escaped = element.clauses
    return (f"{compiler.process(id_, **kw)} IN (SELECT rowid FROM {PRODUCTS_FTS} WHERE {PRODUCTS_FTS} MATCH "
            f"{compiler.process(phrase, **kw)}) AND instr({compiler.process(column, **kw)}, "
            f"{compiler.process(text_, **kw)}) > 0")

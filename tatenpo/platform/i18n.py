"""Language and time zone: Japanese by default, English per user; times shown in Japan time. The compiled
catalogs (.mo, build output) are made at start when missing or older than their .po."""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import current_app, g
from flask_babel import get_locale, get_translations
from flask_login import current_user


def select_locale() -> str:
    if current_user and current_user.is_authenticated and current_user.locale in current_app.config["LANGUAGES"]:
        return current_user.locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str:
    return current_app.config["BABEL_DEFAULT_TIMEZONE"]


log = logging.getLogger(__name__)


def compile_catalogs(folder: str | Path) -> list[Path]:
    """Compile each <lang>/LC_MESSAGES/*.po whose .mo is missing or older (as `make` does with pybabel), so
    that `flask --app app run` on a fresh checkout speaks Japanese too. Several processes may start at once:
    each writes a file of its own and renames it over the .mo, so a reader never sees half a catalog."""
    compiled = []
    for po in sorted(Path(folder).glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        try:
            if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
                continue
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name)
            fd, temporary = tempfile.mkstemp(dir=mo.parent, prefix=f".{mo.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as target:
                    write_mo(target, catalog, use_fuzzy=True)
                os.chmod(temporary, 0o644)  # build output, like pybabel's: not a secret
                os.replace(temporary, mo)
            except BaseException:
                os.unlink(temporary)
                raise
            compiled.append(mo)
        except OSError:  # a read-only install: the catalogs it has (or English) are what it shows
            log.warning("could not compile %s", po, exc_info=True)
    return compiled


def init_app(app, babel) -> None:
    compile_catalogs(Path(app.root_path) / "translations")
    babel.init_app(
        app,
        locale_selector=select_locale,
        timezone_selector=select_timezone,
        default_translation_directories=str(app.root_path + "/translations"),
    )
    # Templates call _() dozens of times a page; Flask-Babel's own callables look up the locale and its
    # catalog again on every call. These look them up once per request (and again if force_locale switches
    # the language part-way, e.g. for a mail in the recipient's language).
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
        newstyle=True,
    )


def _translations():
    context = g._flask_babel if g and hasattr(g, "_flask_babel") else None
    if context is None:
        return get_translations()
    locale = getattr(context, "babel_locale", None)
    cached = getattr(context, "tatenpo_translations", None)
    if locale is None or cached is None or cached[0] is not locale:
        get_locale()  # settles context.babel_locale
        cached = context.tatenpo_translations = (context.babel_locale, get_translations())
    return cached[1]

"""Language and time zone: Japanese by default, English per user; times shown in Japan time."""
from __future__ import annotations

from flask import current_app, g
from flask_babel import get_locale, get_translations
from flask_login import current_user


def select_locale() -> str:
    if current_user and current_user.is_authenticated and current_user.locale in current_app.config["LANGUAGES"]:
        return current_user.locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str:
    return current_app.config["BABEL_DEFAULT_TIMEZONE"]


def init_app(app, babel) -> None:
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

"""Language and time zone: Japanese by default, English per user; times shown in Japan time."""
from __future__ import annotations

from flask import current_app
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

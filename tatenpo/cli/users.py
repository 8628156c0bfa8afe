"""`flask create-user EMAIL --password PW [--role admin|staff|support]`. The shell has no login: whoever runs
it acts as the shop's administrator, so it can make the first administrator or one more."""
from __future__ import annotations

import click
from flask import current_app

from tatenpo.cli.output import fail
from tatenpo.platform import auth
from tatenpo.platform.extensions import db


def register(app) -> None:
    @app.cli.command("create-user")
    @click.argument("email")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option("--role", type=click.Choice(["admin", "staff", "support"]), default="admin", show_default=True)
    @click.option("--locale", type=click.Choice(["ja", "en"]), default="ja", show_default=True)
    def create_user(email: str, password: str, role: str, locale: str) -> None:
        """Create a user who can log in (the administrator unless --role says otherwise)."""
        try:
            user = auth.create_user(email, password, role=role, locale=locale)
        except ValueError as exc:
            fail(exc)
        db.session.commit()
        current_app.extensions.pop("tatenpo.has_users", None)
        click.echo(f"created user {user.id} {user.email} ({user.role})")

"""`flask support apply|complete|return`: the support center's applications, for scripts."""
from __future__ import annotations

import click

from tatenpo.cli.output import emit, fail
from tatenpo.models import SupportApplication
from tatenpo.platform.extensions import db
from tatenpo.setup import support_center


def _data(application: SupportApplication) -> dict:
    return {
        "id": application.id,
        "company": application.company,
        "contact_name": application.contact_name,
        "contact_email": application.contact_email,
        "malls": application.malls,
        "application_type": application.application_type,
        "status": application.status,
        "comment": application.comment,
        "submitted_at": application.submitted_at,
        "completed_at": application.completed_at,
    }


def _get(application_id: int) -> SupportApplication:
    application = db.session.get(SupportApplication, application_id)
    if application is None:
        fail(f"no application {application_id}")
    return application


def register(app) -> None:
    @app.cli.group("support")
    def group() -> None:
        """Support-center applications (申請)."""

    @group.command("apply")
    @click.option("--company", required=True)
    @click.option("--contact", required=True)
    @click.option("--email", default=None)
    @click.option("--malls", required=True, help="Comma-separated: rakuten,yahoo,amazon,shopify")
    @click.option("--type", "application_type", default=support_center.APPLICATION_TYPE_START, show_default=True)
    @click.option("--note", default=None)
    @click.option("--json", "as_json", is_flag=True)
    def apply(company, contact, email, malls, application_type, note, as_json) -> None:
        """Submit an application; prints its id."""
        try:
            application = support_center.apply(
                company=company, contact_name=contact, contact_email=email,
                malls=[m.strip() for m in malls.split(",")], application_type=application_type, note=note,
            )
        except support_center.ApplicationError as exc:
            fail(exc.message)
        db.session.commit()
        emit(_data(application), as_json, text=str(application.id))

    @group.command("complete")
    @click.argument("application_id", type=int)
    @click.option("--json", "as_json", is_flag=True)
    def complete(application_id, as_json) -> None:
        """Mark an application 設定完了 (issues order-mail addresses)."""
        application = _get(application_id)
        try:
            stores = support_center.complete(application)
        except support_center.ApplicationError as exc:
            fail(exc.message)
        db.session.commit()
        data = _data(application) | {"order_mail_addresses": {s.id: s.order_mail_address for s in stores}}
        emit(data, as_json, text=f"application {application.id}: {application.status}")

    @group.command("return")
    @click.argument("application_id", type=int)
    @click.option("--comment", required=True)
    def return_(application_id, comment) -> None:
        """Return an application to the applicant (差し戻し) with a comment."""
        application = _get(application_id)
        try:
            support_center.return_application(application, comment)
        except support_center.ApplicationError as exc:
            fail(exc.message)
        db.session.commit()
        click.echo(f"application {application.id}: {application.status}")

"""導入ガイド: the eight steps per store, their state derived in tatenpo.setup.onboarding, each linking to the page
that does it. A new install lands here after setup."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.routing import BuildError

from tatenpo import malls
from tatenpo.malls import sandbox_admin
from tatenpo.models import Store
from tatenpo.platform import credentials, mail
from tatenpo.platform.extensions import db
from tatenpo.setup import onboarding

bp = Blueprint("onboarding", __name__)


def link_to(*endpoints: str, **values) -> str:
    """The first of these pages that exists (screens arrive one issue at a time); the top page otherwise."""
    for endpoint in endpoints:
        try:
            return url_for(endpoint, **values)
        except BuildError:
            continue
    return url_for("dashboard.index")


def sandbox_url(store: Store | None) -> str | None:
    """The sandbox store's own page when the store talks to a sandbox mall (its listing CSV is downloaded
    there in step 3, and its stock is checked there in step 8); the sandbox's list page as a fallback."""
    base = (current_app.config.get("SANDBOX_URL") or "").rstrip("/")
    if store is None or not store.endpoint or not base:
        return None
    if not (store.endpoint.startswith(base) or store.endpoint.startswith("ftp://127.0.0.1")):
        return None
    try:
        mine = credentials.read(store)
        for candidate in sandbox_admin.stores(base, mall=store.mall, timeout=2):
            if candidate.get("endpoint") == store.endpoint and candidate.get("credentials") == mine:
                return candidate.get("page") or base + "/"
    except (sandbox_admin.SandboxUnavailable, credentials.CredentialKeyError):
        pass
    return base + "/" if store.endpoint.startswith(base) else None


@bp.route("/guide")
def index():
    everyone = onboarding.all_progress()
    chosen_id = request.args.get("store", type=int)
    selected = next((p for p in everyone if p.store is not None and p.store.id == chosen_id), everyone[0])
    store = selected.store
    store_args = {"store": store.id} if store is not None else {}
    links = {
        "apply": link_to("support.apply"),
        "mall_setup": link_to("settings.edit_store", store_id=store.id) if store else link_to("settings.choose_mall", "settings.stores"),
        "prepare_data": link_to("imports.index"),
        "import": link_to("imports.index", **store_args),
        "sync_settings": link_to("settings.edit_store", store_id=store.id) if store else link_to("settings.choose_mall", "settings.stores"),
        "edit_stock": link_to("listings.index", **store_args),
        "history": link_to("sync.index", **store_args),
        "reflected": link_to("listings.index", **store_args),
    }
    return render_template(
        "onboarding/index.html",
        everyone=everyone,
        selected=selected,
        store=store,
        links=links,
        stores_link=link_to("settings.choose_mall", "settings.stores"),
        sandbox=sandbox_url(store),
        mall_preparation=malls.mall(store.mall).preparation if store else None,
        support_link=link_to("support.index"),
    )


@bp.route("/guide/stores/<int:store_id>/test-mail", methods=["POST"])
def test_mail(store_id: int):
    """テストメールを送る: a short mail to the store's own order-mail address, to see that mail reaches Tatenpo."""
    store = db.get_or_404(Store, store_id)
    back = url_for("onboarding.index", store=store.id) + "#mail-route"
    if not store.order_mail_address:
        flash(_("This EC site has no order-mail address yet: it is issued when support completes the application."),
              "error")
        return redirect(back)
    try:
        where = mail.send(store.order_mail_address, _("Tatenpo test mail"),
                          _("A test mail from Tatenpo's setup guide to the order-mail address of %(store)s.",
                            store=store.name))
    except mail.MailError as exc:
        flash(_("The test mail could not be sent: %(error)s", error=str(exc)), "error")
        return redirect(back)
    if where == "smtp":
        flash(_("A test mail was sent to %(address)s.", address=store.order_mail_address), "success")
    else:
        flash(_("No mail server is configured, so the test mail to %(address)s was kept in the outbox.",
                address=store.order_mail_address), "info")
    return redirect(back)

"""システム設定 › 共通設定 › ECサイト: list, add and edit stores; 接続テスト inline (htmx).

Secrets are write-only: a secret field is never filled in, a stored one shows 設定済み, and saving with the field
left empty keeps what is stored. A sandbox store can fill the endpoint and credentials for a trial.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Optional
from urllib.parse import urlparse

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, PasswordField, RadioField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from tatenpo import malls
from tatenpo.malls import sandbox_admin
from tatenpo.models import Store
from tatenpo.orders import intake
from tatenpo.platform import credentials
from tatenpo.platform.extensions import db
from tatenpo.setup import connection_check, credential_dates, endpoints, support_center
from tatenpo.setup import stores as store_domain
from tatenpo.stock.inventory import StockError, parse_quantity
from tatenpo.views.forms import strip
from tatenpo.views.tables import is_htmx

bp = Blueprint("settings", __name__)

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
SANDBOX_ITEMS = 20
# The latest expiry date the form takes: beyond any mall's rule (Amazon: 365 days), so a typo such as 2062 is caught.
MAX_EXPIRY_DAYS = 3 * 365


class StoreForm(FlaskForm):
    name = StringField(_l("Store name"), filters=[strip],
                       validators=[DataRequired(_l("Enter the store name.")), Length(max=100)])
    auto_sync = RadioField(_l("Automatic stock sync"), choices=[SelectChoice("on", _l("In use")), SelectChoice("off", _l("Stopped"))],
                           default="off")
    immediate_sync = BooleanField(_l("Push a change within seconds (immediate sync)"))
    safety_stock = StringField(_l("Safety stock"), default="0", filters=[strip])
    sync_interval = StringField(_l("Sync interval (seconds)"), filters=[strip])
    endpoint = StringField(_l("Endpoint"), filters=[strip], validators=[Length(max=500)])
    sandbox_store = SelectField(_l("Use a sandbox store"), choices=[], validate_choice=False)


def _stored(store: Optional[Store]) -> Optional[dict]:
    """The store's saved credentials; {} for a new store; None when they cannot be decrypted any more (the
    instance's credential key was replaced), which the form says so the shop enters them again."""
    if store is None:
        return {}
    try:
        return credentials.read(store)
    except credentials.CredentialKeyError:
        return None


def _form_class(mall: str):
    """StoreForm plus the mall's credential fields (cred_<key>); secrets as password fields, never echoed."""
    fields = {}
    for spec in malls.credential_fields(mall):
        kind = PasswordField if spec.secret else StringField
        fields["cred_" + spec.key] = kind(spec.label, filters=[strip], validators=[Length(max=500)],
                                          description=spec.help)
    if credential_dates.lifetime(mall) is not None:
        fields["credentials_expire_on"] = StringField(_l("Expiry date of the credential"), filters=[strip])
    return type(f"StoreForm_{mall.replace('-', '_')}", (StoreForm,), fields)


def _sandbox_stores(mall: str) -> tuple[list[dict], Optional[str]]:
    """The sandbox stores of `mall` (asked once per request), or the reason they cannot be listed."""
    if "settings.sandbox" not in g:
        try:
            g.setdefault("settings.sandbox", (sandbox_admin.stores(current_app.config["SANDBOX_URL"], mall), None))
        except sandbox_admin.SandboxUnavailable as exc:
            g.setdefault("settings.sandbox", ([], str(exc)))
    return g.get("settings.sandbox")


def _safety_stock(form) -> Optional[int]:
    try:
        value = parse_quantity(form.safety_stock.data or "0")
    except StockError as exc:
        form.safety_stock.errors.append(str(exc.message) if hasattr(exc, "message") else str(exc))
        return None
    if value < 0 or value > 999_999:
        form.safety_stock.errors.append(_("Safety stock must be from 0 to 999999."))
        return None
    return value


def _sync_interval(form) -> tuple[bool, Optional[int]]:
    """Empty: the app's default interval. Otherwise 10 s to one day (the scheduler's sweep is the floor)."""
    text = form.sync_interval.data or ""
    if not text:
        return True, None
    try:
        value = parse_quantity(text)
    except StockError as exc:
        form.sync_interval.errors.append(str(exc.message))
        return False, None
    if not 10 <= value <= 86_400:
        form.sync_interval.errors.append(_("The sync interval must be from 10 to 86400 seconds (or empty)."))
        return False, None
    return True, value


def _endpoint(form, mall: str) -> tuple[bool, Optional[str]]:
    value = form.endpoint.data or ""
    if not value:
        return True, None
    url = urlparse(value)
    connector = malls.mall(mall)
    if url.scheme not in connector.endpoint_schemes or not url.hostname:
        # A web mall's example stays generic; another protocol shows the whole address, port included.
        example = "https://…" if "https" in connector.endpoint_schemes else connector.default_endpoint
        form.endpoint.errors.append(_("Enter an address such as %(example)s, or leave it empty for the real mall.",
                                      example=example))
        return False, None
    try:
        return True, endpoints.check(mall, value.rstrip("/"))
    except endpoints.EndpointRefused as exc:
        form.endpoint.errors.append(str(exc.message))
        return False, None


def _apply_sandbox(form, mall: str) -> Optional[tuple[str, dict]]:
    """(endpoint, credentials) of the chosen sandbox store, creating one when asked; None when none is chosen
    or it failed (then the field carries the message)."""
    choice = form.sandbox_store.data or ""
    if not choice:
        return None
    base = current_app.config["SANDBOX_URL"]
    try:
        if choice == "new":
            chosen = sandbox_admin.create_store(base, mall, SANDBOX_ITEMS)
        elif choice.isdigit():
            chosen = sandbox_admin.store(base, int(choice))
        else:
            raise sandbox_admin.SandboxUnavailable(_("Choose a sandbox store from the list."))
    except sandbox_admin.SandboxUnavailable as exc:
        form.sandbox_store.errors.append(str(exc))
        return None
    if chosen["mall"] != mall:
        form.sandbox_store.errors.append(_("That sandbox store is not on this mall."))
        return None
    return chosen["endpoint"], chosen["credentials"]


def _expiry_day(form, today: date) -> tuple[bool, Optional[date]]:
    """The expiry date the shop typed (the one the mall shows), or None when the field is empty or absent."""
    field = getattr(form, "credentials_expire_on", None)
    text = (field.data or "") if field is not None else ""
    if not text:
        return True, None
    try:
        day = datetime.strptime(text.replace("/", "-"), "%Y-%m-%d").date()
    except ValueError:
        field.errors.append(_("Enter the expiry date as YYYY-MM-DD (for example %(example)s).",
                              example=(today + timedelta(days=90)).isoformat()))
        return False, None
    if day < today:
        field.errors.append(_("This date has passed. Enter the expiry date of the current credential, as the mall "
                              "shows it (renew it on the mall first if it has expired)."))
        return False, None
    if day > today + timedelta(days=MAX_EXPIRY_DAYS):
        field.errors.append(_("Enter a date within three years."))
        return False, None
    return True, day


def _apply_dates(store: Store, mall: str, values: dict, configured: set[str], day: Optional[date],
                 before: Optional[date]) -> None:
    """A new expiring credential starts a new lifetime: the typed date when the shop changed it, else the mall's
    rule. Without a new credential, a changed date only corrects the date of the stored one (none stored: no date)."""
    rule = credential_dates.lifetime(mall)
    if rule is not None and rule.field not in credentials.configured_keys(store):
        credential_dates.set_expiry(store, None)  # none stored (or dropped with a new endpoint): nothing expires
        return
    if credential_dates.renews(mall, values):
        typed = day is not None and day != before
        credential_dates.note_renewal(store, expires_at=credential_dates.end_of_day(day) if typed else None)
    elif rule is not None and rule.field in configured and day != before:
        credential_dates.set_expiry(store, day)


def _check_credentials(form, mall: str, values: dict, configured: set[str], auto_sync: bool) -> bool:
    ok = True
    shop = values.get("shop")
    if shop:
        shop = values["shop"] = shop.lower().removesuffix(".myshopify.com").removeprefix("https://")
        if not SHOP_DOMAIN.match(shop):
            getattr(form, "cred_shop").errors.append(_("Enter the part before .myshopify.com (letters, digits and -)."))
            ok = False
    if auto_sync:
        present = configured | {key for key, value in values.items() if value}
        for spec in malls.missing_credentials(mall, present):
            getattr(form, "cred_" + spec.key).errors.append(
                _("Enter %(field)s to turn automatic stock sync on.", field=spec.label))
            ok = False
    return ok


def _save(form, mall: str, store: Optional[Store]) -> Optional[Store]:
    """Validate everything first, then change the store in one transaction; None (and messages on the form)
    when anything is wrong: nothing is saved then."""
    valid = form.validate()
    safety = _safety_stock(form)
    endpoint_ok, endpoint = _endpoint(form, mall)
    interval_ok, interval = _sync_interval(form)
    expiry_before = credential_dates.expiry_day(store) if store is not None else None
    day_ok, day = _expiry_day(form, credential_dates.today())
    values = {spec.key: getattr(form, "cred_" + spec.key).data or "" for spec in malls.credential_fields(mall)}
    sandbox = _apply_sandbox(form, mall) if valid else None
    if sandbox is not None:
        endpoint, values = sandbox
    auto_sync = form.auto_sync.data == "on"
    saved = _stored(store)
    if saved is None:  # unreadable: whatever is typed now replaces it
        store.credentials_token = None
        saved = {}
    configured = {key for key, value in saved.items() if value}
    creds_ok = _check_credentials(form, mall, values, configured, auto_sync)
    if not (valid and safety is not None and endpoint_ok and interval_ok and creds_ok and day_ok) \
            or form.sandbox_store.errors:
        return None
    try:
        if store is None:
            store = store_domain.create_store(mall, form.name.data, endpoint=endpoint, credential_values=values,
                                        auto_sync=auto_sync, immediate_sync=form.immediate_sync.data,
                                        safety_stock=safety)
            store.sync_interval_seconds = interval
        else:
            store_domain.update_store(
                store, name=form.name.data, endpoint=endpoint, auto_sync=auto_sync,
                immediate_sync=form.immediate_sync.data, safety_stock=safety, credentials=values,
                sync_interval_seconds=interval,
            )
        _apply_dates(store, mall, values, configured, day, expiry_before)
    except store_domain.StoreError as exc:
        db.session.rollback()
        form.name.errors.append(str(exc.message))
        return None
    db.session.commit()
    return store


def _render_form(form, mall: str, store: Optional[Store]):
    sandbox_list, sandbox_error = _sandbox_stores(mall)
    saved = _stored(store)
    configured = {key for key, value in (saved or {}).items() if value}
    return render_template(
        "settings/form.html", form=form, mall=mall, mall_label=malls.label(mall), store=store,
        credential_fields=malls.credential_fields(mall), configured=configured,
        default_endpoint=malls.mall(mall).default_endpoint,
        sandbox_stores=sandbox_list, sandbox_error=sandbox_error, sandbox_url=current_app.config["SANDBOX_URL"],
        credentials_unreadable=saved is None, application_done=support_center.covers(mall), default_interval=current_app.config["SYNC_INTERVAL_SECONDS"],
        expiry_rule=credential_dates.lifetime(mall), expiry=credential_dates.expiry_of(store) if store else None,
        rule_day=credential_dates.suggested_expiry_day(mall),
    )


def _with_sandbox_choices(form, mall: str) -> None:
    sandbox_list, _error = _sandbox_stores(mall)
    form.sandbox_store.choices = [SelectChoice("", _("Do not use (connect to the real mall)")),
                                  SelectChoice("new", _("Create a new sandbox store (%(n)s items)", n=SANDBOX_ITEMS))]
    form.sandbox_store.choices += [SelectChoice(str(s["id"]), f"#{s['id']} {s['name']}") for s in sandbox_list]


@bp.route("/settings/stores")
def stores():
    rows = db.session.scalars(select(Store).order_by(Store.id)).all()
    keys = {}
    for store in rows:
        keys[store.id] = {key for key, value in (_stored(store) or {}).items() if value}
    return render_template("settings/stores.html", stores=rows, configured=keys, mall_of=malls.mall,
                           expiry_of=credential_dates.expiry_of, soon_days=credential_dates.SOON_DAYS)


@bp.route("/settings/stores/new")
def choose_mall():
    return render_template("settings/choose_mall.html", malls=malls.CONNECTORS)


@bp.route("/settings/stores/new/<mall>", methods=["GET", "POST"])
def add_store(mall: str):
    if mall not in malls.keys():
        abort(404)
    form = _form_class(mall)()
    if request.method == "GET" and hasattr(form, "credentials_expire_on"):
        # A credential entered today lasts the mall's rule: the form starts with that date, to correct if RMS shows
        # another one.
        form.credentials_expire_on.data = credential_dates.suggested_expiry_day(mall).isoformat()
    _with_sandbox_choices(form, mall)
    if request.method == "POST":
        store = _save(form, mall, None)
        if store is not None:
            flash(_("The EC site “%(name)s” was saved. Run the connection test.", name=store.name), "success")
            return redirect(url_for("settings.edit_store", store_id=store.id))
    return _render_form(form, mall, None), 400 if request.method == "POST" else 200


@bp.route("/settings/stores/<int:store_id>", methods=["GET", "POST"])
def edit_store(store_id: int):
    store = db.get_or_404(Store, store_id)
    form_class = _form_class(store.mall)
    if request.method == "POST":
        form = form_class()
    else:
        form = form_class(obj=None, data={
            "name": store.name, "auto_sync": "on" if store.auto_sync else "off", "immediate_sync": store.immediate_sync,
            "safety_stock": str(store.safety_stock), "endpoint": store.endpoint or "",
            "sync_interval": str(store.sync_interval_seconds or ""),
            **{"cred_" + s.key: _visible(store, s.key) for s in malls.credential_fields(store.mall) if not s.secret},
            "credentials_expire_on": _iso(credential_dates.expiry_day(store)),
        })
    _with_sandbox_choices(form, store.mall)
    if request.method == "POST":
        saved = _save(form, store.mall, store)
        if saved is not None:
            flash(_("The EC site “%(name)s” was saved.", name=saved.name), "success")
            return redirect(url_for("settings.edit_store", store_id=store.id))
        return _render_form(form, store.mall, store), 400
    return _render_form(form, store.mall, store)


def _iso(day: Optional[date]) -> str:
    return day.isoformat() if day else ""


def _visible(store: Store, key: str) -> str:
    return (_stored(store) or {}).get(key, "")


@bp.route("/settings/stores/<int:store_id>/test", methods=["POST"])
def test_connection(store_id: int):
    store = db.get_or_404(Store, store_id)
    connection_check.check(store)
    db.session.commit()
    if is_htmx():
        return render_template("settings/_connection.html", store=store)
    flash(store.connection_message, "success" if store.connection_ok else "error")
    return redirect(request.referrer or url_for("settings.edit_store", store_id=store.id))


@bp.route("/settings/stores/<int:store_id>/host-key/forget", methods=["POST"])
def forget_host_key(store_id: int):
    """The shop clears the trusted SFTP host key (Rakuten announced a new one); the next 接続テスト keeps the new."""
    store = db.get_or_404(Store, store_id)
    store_domain.forget_host_key(store)
    store.connection_ok = store.connection_checked_at = store.connection_message = None
    db.session.commit()
    if is_htmx():
        return render_template("settings/_connection.html", store=store)
    flash(_("The confirmed host key was forgotten. Test the connection to confirm the server's key again."), "success")
    return redirect(url_for("settings.edit_store", store_id=store.id))


@bp.route("/settings/stores/<int:store_id>/inbound-token", methods=["POST"])
def reissue_inbound_token(store_id: int):
    """再発行: a new secret in the URL of the store's door for inbound-mail services; the old URL stops working."""
    store = db.get_or_404(Store, store_id)
    intake.issue_token(store)
    db.session.commit()
    flash(_("A new URL for the inbound-mail service was issued. Enter it in the service: the old one no longer works."),
          "success")
    return redirect(url_for("settings.edit_store", store_id=store.id) + "#inbound-door")

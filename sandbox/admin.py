"""The JSON admin API for tests, demos and automation (/_sandbox/…), and the pages a person uses: the list of
sandbox stores with their credentials and fault switches, and each store's "EC site" page with its stock,
where a purchase can be made as a buyer would."""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, url_for

from . import catalog, listing_csv, mall_orders, outbox
from .common import state
from .malls import Endpoints, mall, mall_keys, names
from .state import OrderRefused

bp = Blueprint("admin", __name__)

FAULT_NAMES = ("auth", "maintenance", "error_5xx", "throttle", "timeout", "hang_seconds", "reflection_delay",
               "item_error")
JST = timezone(timedelta(hours=9))
# An address smtplib can send to without SMTPUTF8: ASCII local part @ a dotted domain.
MAIL_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
BAD_ORDER_MAIL = "order_mail must be a mail address such as orders@shop.example (or empty for none)."
RECENT_ORDERS = 20  # orders shown on the store page


def endpoint_for(store: dict, public_url: str, ftp_host: str, ftp_port: int) -> str:
    """The base URL to configure in Tatenpo: everything before the mall's real path."""
    return mall(store["mall"]).endpoint(store, Endpoints(public_url, ftp_host, ftp_port))


def _endpoints() -> Endpoints:
    config = current_app.config
    return Endpoints(config["PUBLIC_URL"], config["FTP_HOST"], config["FTP_PORT"], config.get("SFTP_PORT") or 0)


def endpoint_of(store: dict) -> str:
    return mall(store["mall"]).endpoint(store, _endpoints())


def store_json(store: dict) -> dict[str, Any]:
    data = {"id": store["id"], "mall": store["mall"], "name": store["name"], "endpoint": endpoint_of(store),
            "credentials": store["credentials"], "faults": store["faults"], "order_mail": store["order_mail"],
            "page": url_for("admin.store_page", store_id=store["id"], _external=True)}
    data.update(mall(store["mall"]).describe(store, _endpoints()))
    return data


def _error(message: str, status: int = 400) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _store_or_404(store_id: int) -> dict:
    store = state().store(store_id)
    if store is None:
        abort(404)
    return store


def create(key: str, items: int, name: str = "", seed: int = 0) -> dict:
    """Create a sandbox store with generated items (also used by Tatenpo's demo set-up, without HTTP)."""
    store = state().create_store(
        key, name or f"サンドボックス{mall(key).name}",
        lambda store_id: catalog.generate(key, store_id, items, seed),
    )
    hook = current_app.extensions.get("sandbox.on_store_created")
    if hook:
        hook(store)
    return store


@bp.get("/_sandbox/health")
def health():
    return jsonify({"ok": True, "ftp_port": current_app.config["FTP_PORT"]})


@bp.post("/_sandbox/stores")
def create_store():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error('Send JSON: {"mall": "rakuten", "items": 20}.')
    key = body.get("mall")
    if key not in mall_keys():
        return _error(f"mall must be one of {', '.join(mall_keys())}.")
    items = body.get("items", 20)
    if not isinstance(items, int) or isinstance(items, bool) or not 0 <= items <= 200_000:
        return _error("items must be an integer from 0 to 200000.")
    order_mail = _order_mail(body.get("order_mail"))
    if order_mail is None:
        return _error(BAD_ORDER_MAIL)
    store = create(key, items, str(body.get("name") or ""), int(body.get("seed") or 0))
    if order_mail:
        state().set_order_mail(store["id"], order_mail)
        store = state().store(store["id"])
    response = jsonify(store_json(store))
    response.status_code = 201
    return response


@bp.get("/_sandbox/stores")
def list_stores():
    return jsonify({"stores": [store_json(s) for s in state().stores()]})


@bp.get("/_sandbox/stores/<int:store_id>")
def get_store(store_id: int):
    return jsonify(store_json(_store_or_404(store_id)))


def _order_mail(value: Any) -> str | None:
    """The address as given ('' for none), or None when it does not look like an address."""
    address = "" if value is None else value.strip() if isinstance(value, str) else None
    if address is None or (address and (len(address) > 254 or not MAIL_ADDRESS.match(address))):
        return None
    return address


@bp.post("/_sandbox/stores/<int:store_id>")
def update_store(store_id: int):
    """The store's settings in the mall's admin: `order_mail`, where the mall sends its order mails (RMS
    注文確認メール送り先メールアドレス, ストアクリエイターPro 通知設定, …). JSON, or the store page's form."""
    _store_or_404(store_id)
    form = _from_page()
    body = request.form if form else request.get_json(silent=True)
    if not isinstance(body, dict) or "order_mail" not in body:
        return _error('Send JSON: {"order_mail": "orders@shop.example"} (empty for none).')
    address = _order_mail(body.get("order_mail"))
    if address is None:
        return _back(store_id, error="メールアドレスの形式ではありません。") if form else _error(BAD_ORDER_MAIL)
    state().set_order_mail(store_id, address)
    if form:
        return _back(store_id, notice="注文メールの送り先を保存しました。" if address else "注文メールの送り先を消しました。")
    return jsonify(store_json(state().store(store_id)))


def _item_json(store: dict, item: dict) -> dict[str, Any]:
    data = {"code": item["code"], "variant": item["variant"], "quantity": item["quantity"], "sku": item["sku"],
            "name": item["name"]}
    data.update(mall(store["mall"]).item_fields(item))
    return data


@bp.get("/_sandbox/stores/<int:store_id>/stock")
def stock(store_id: int):
    store = _store_or_404(store_id)
    return jsonify({"items": [_item_json(store, i) for i in state().items(store_id)]})


@bp.post("/_sandbox/stores/<int:store_id>/stock")
def edit_stock(store_id: int):
    """Edit stock directly on the mall (as a shop would in RMS): how drift is made."""
    _store_or_404(store_id)
    body = request.get_json(silent=True) or {}
    changes = []
    for entry in body.get("items", []):
        try:
            quantity = int(entry["quantity"])
        except (KeyError, TypeError, ValueError):
            return _error("Each item needs code, variant and an integer quantity.")
        if quantity < 0:
            return _error("quantity cannot be negative.")
        changes.append((str(entry["code"]), str(entry.get("variant", "")), quantity))
    known = state().set_quantities(store_id, changes, park_unknown=False)
    return jsonify({"updated": sum(known), "unknown": len(known) - sum(known)})


@bp.post("/_sandbox/stores/<int:store_id>/items/delete")
def delete_items(store_id: int):
    """The mall no longer has these items (deleted in RMS, say): how an unknown-item mismatch is made.
    JSON {"items": [{"code", "variant"}]}, or the store page's form (code, variant)."""
    _store_or_404(store_id)
    if request.is_json:
        entries = (request.get_json(silent=True) or {}).get("items") or []
    else:
        entries = [{"code": request.form.get("code", ""), "variant": request.form.get("variant", "")}]
    if not entries or not all(isinstance(e, dict) and e.get("code") for e in entries):
        return _error("Each item needs a code (and its variant).")
    deleted = sum(state().delete_item(store_id, str(e["code"]), str(e.get("variant", ""))) for e in entries)
    if not request.is_json:
        return redirect(url_for("admin.store_page", store_id=store_id))
    return jsonify({"deleted": deleted})


@bp.get("/_sandbox/stores/<int:store_id>/listing.csv")
def listing(store_id: int):
    store = _store_or_404(store_id)
    kind = request.args.get("file", "")
    try:
        filename, content_type, data = listing_csv.render(store, state().items(store_id), kind)
    except ValueError as exc:
        return _error(str(exc))
    return Response(data, content_type=content_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.post("/_sandbox/stores/<int:store_id>/faults")
def faults(store_id: int):
    _store_or_404(store_id)
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _error("Send a JSON object of fault switches.")
        unknown = set(body) - set(FAULT_NAMES) - {"clear"}
        if unknown:
            return _error(f"Unknown fault switch: {', '.join(sorted(unknown))}. Known: {', '.join(FAULT_NAMES)}.")
        if body.get("auth") not in (None, False, "", "wrong", "expired", "revoked"):
            return _error('auth is "wrong", "expired" or "revoked" (or null to switch it off).')
        return jsonify({"faults": state().set_faults(store_id, body)})
    # The store page's form: every switch is sent, empty meaning off.
    changes: dict[str, Any] = {"clear": True}
    for name in FAULT_NAMES:
        value = request.form.get(name, "").strip()
        if not value:
            continue
        if name == "auth":
            changes[name] = value if value in ("wrong", "expired", "revoked") else None
        elif name == "item_error":
            changes[name] = [code.strip() for code in value.split(",") if code.strip()]
        elif value in ("on", "true"):
            changes[name] = True
        else:
            try:
                changes[name] = int(value)
            except ValueError:
                continue
    state().set_faults(store_id, changes)
    return redirect(url_for("admin.store_page", store_id=store_id))


def _from_page() -> bool:
    """A post from the store page's forms (answered with a redirect), not from the JSON API. Browsers label
    even an empty form, so a bare API post (no body) is still answered in JSON."""
    return request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")


def _back(store_id: int, notice: str = "", error: str = "") -> Response:
    """The store page again, with one line saying what the form did (the sandbox keeps no session to flash in)."""
    params = {"notice": notice} if notice else {"error": error}
    return redirect(url_for("admin.store_page", store_id=store_id, **params))


def _count(value: Any) -> int | None:
    """A whole number from JSON or a form field, else None (no bools, no 1.5)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _order_lines(entries: Any) -> list[tuple[str, str, int]] | str:
    """(code, variant, quantity) per line, or the message saying what is wrong."""
    if not isinstance(entries, list) or not entries:
        return 'Send JSON: {"items": [{"code": "tt-0001", "variant": "normal-inventory", "quantity": 1}]}.'
    lines = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("code"), str) or not entry["code"]:
            return "Each item needs a code (and its variant)."
        variant = entry.get("variant") or ""
        if not isinstance(variant, str):
            return "variant must be a string."
        quantity = _count(entry.get("quantity", 1))
        if quantity is None or quantity < 1:
            return "quantity must be a whole number of at least 1."
        lines.append((entry["code"], variant, quantity))
    return lines


@bp.post("/_sandbox/stores/<int:store_id>/orders")
def place_order(store_id: int):
    """A purchase on the store, as a buyer makes it: the mall's stock falls at once and the order mail is
    queued for the shop's registered address. JSON {"items": [{"code", "variant", "quantity"}], "mail": false
    (the mail is lost), "fba": true (Amazon ships it from its warehouse)}, or the store
    page's 購入 form (code, variant, quantity)."""
    store = _store_or_404(store_id)
    form = _from_page()
    if form:
        lines = _order_lines([{"code": request.form.get("code", ""), "variant": request.form.get("variant", ""),
                               "quantity": request.form.get("quantity", "1")}])
    else:
        lines = _order_lines((request.get_json(silent=True) or {}).get("items"))
    if isinstance(lines, str):
        return _back(store_id, error=lines) if form else _error(lines)
    ordered_at = datetime.now(JST).replace(microsecond=0)
    # {"fba": true} on Amazon: fulfilled by Amazon (AFN), so the shop's stock does not move (sandbox/mall_orders.py).
    fba = not form and store["mall"] == "amazon" and (request.get_json(silent=True) or {}).get("fba") is True
    # {"mail": false}: the order mail is lost (the order APIs must catch the order).
    lose_mail = not form and (request.get_json(silent=True) or {}).get("mail") is False
    try:
        order, mail = state().place_order(
            store_id, lines, ordered_at,
            number_for=lambda sequence: outbox.order_number(store, sequence, ordered_at),
            mail_for=outbox.order_mail, fba=fba, lose_mail=lose_mail,
        )
    except OrderRefused as refused:
        return _back(store_id, error=refused.message) if form else _error(refused.message, refused.status)
    if form:
        said = "注文メールは送信待ちです" if mail else "注文メールの送り先が未設定のため、メールは送りません"
        return _back(store_id, notice=f"注文を受け付けました。受注番号 {order['number']}({said})")
    response = jsonify({"order_number": order["number"], "mail": "queued" if mail else "no-address",
                        "order": order})
    response.status_code = 201
    return response


@bp.get("/_sandbox/stores/<int:store_id>/orders")
def orders(store_id: int):
    _store_or_404(store_id)
    return jsonify({"orders": state().orders(store_id)})


@bp.post("/_sandbox/stores/<int:store_id>/orders/<number>/cancel")
def cancel_order(store_id: int, number: str):
    """The shop cancels an order before shipping: the mall's stock comes back (409 once cancelled or shipped),
    and 楽天 mails its cancellation notice."""
    return _change_order(store_id, number, "cancelled", "注文 {number} を取り消しました。在庫を戻しました。",
                         outbox.cancellation_mail)


@bp.post("/_sandbox/stores/<int:store_id>/orders/<number>/ship")
def ship_order(store_id: int, number: str):
    """The shop ships an order: it can no longer be cancelled, and no stock comes back."""
    return _change_order(store_id, number, "shipped", "注文 {number} を発送済みにしました。")


@bp.post("/_sandbox/stores/<int:store_id>/orders/<number>/status")
def order_status(store_id: int, number: str):
    """Move an order to one of the mall's own statuses ({"status": "300"} on 楽天, "Shipped" on Amazon, …) or a
    plain one (ordered, shipped, cancelled): what its order API reports from then on. A cancellation gives the
    stock back; a shipped or cancelled order moves no further (409). See sandbox/mall_orders.py."""
    store = _store_or_404(store_id)
    form = _from_page()
    wanted = (request.form.get("status") if form else (request.get_json(silent=True) or {}).get("status"))
    resolved = mall_orders.resolve(store["mall"], wanted) if isinstance(wanted, str) else None
    if resolved is None:
        message = f"status must be one of: {', '.join(mall_orders.choices(store['mall']))}"
        return _back(store_id, error=message) if form else _error(message)
    plain, own = resolved
    try:
        order = state().change_order(store_id, number, plain,
                                     outbox.cancellation_mail if plain == "cancelled" else None, mall_status=own)
    except OrderRefused as refused:
        return _back(store_id, error=refused.message) if form else _error(refused.message, refused.status)
    if form:
        return _back(store_id, notice=f"注文 {number} の状態を {own or plain} にしました。")
    return jsonify({"order": order})


def _change_order(store_id: int, number: str, status: str, notice: str,
                  mail_for: Callable[[dict, dict], tuple[str, bytes] | None] | None = None) -> Response:
    _store_or_404(store_id)
    form = _from_page()
    try:
        order = state().change_order(store_id, number, status, mail_for)
    except OrderRefused as refused:
        return _back(store_id, error=refused.message) if form else _error(refused.message, refused.status)
    if form:
        return _back(store_id, notice=notice.format(number=number))
    return jsonify({"order": order})


def _when(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, JST).isoformat(timespec="seconds") if at else None


def _mail_json(store_id: int, mail: dict) -> dict[str, Any]:
    return {"id": mail["id"], "order_number": mail["order_number"], "kind": mail["kind"], "from": mail["mail_from"],
            "to": mail["rcpt_to"], "status": mail["status"], "attempts": mail["attempts"],
            "last_error": mail["last_error"], "queued_at": _when(mail["created"]),
            "next_try_at": _when(mail["next_try_at"]) if mail["status"] == "queued" else None,
            "sent_at": _when(mail["sent_at"]),
            "raw": url_for("admin.mail_raw", store_id=store_id, mail_id=mail["id"], _external=True)}


@bp.get("/_sandbox/stores/<int:store_id>/outbox")
def outbox_mails(store_id: int):
    """The store's order mails, oldest first, with their delivery state: poll this until a mail is 'sent'."""
    _store_or_404(store_id)
    return jsonify({"mails": [_mail_json(store_id, m) for m in state().outbox(store_id)]})


@bp.get("/_sandbox/stores/<int:store_id>/outbox/<int:mail_id>.eml")
def mail_raw(store_id: int, mail_id: int):
    """One mail exactly as it goes over SMTP."""
    mail = state().mail(store_id, mail_id)
    if mail is None:
        abort(404)
    return Response(mail["raw"], content_type="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="{mail["order_number"]}.eml"'})


@bp.get("/_sandbox/stores/<int:store_id>/calls")
def calls(store_id: int):
    _store_or_404(store_id)
    return jsonify({"calls": state().calls(store_id)})


@bp.get("/")
def index():
    return render_template("index.html", stores=[store_json(s) for s in state().stores()], mall_names=names())


PAGE_ITEMS = 500


@bp.get("/stores/<int:store_id>")
def store_page(store_id: int):
    """The mall's own view of the store's stock. `q` narrows by code, SKU or name (a big catalog shows its
    first PAGE_ITEMS rows)."""
    store = _store_or_404(store_id)
    query = request.args.get("q", "").strip().lower()
    items = state().items(store_id)
    if query:
        items = [i for i in items if query in i["code"].lower() or query in i["sku"].lower()
                 or query in i["variant"].lower() or query in i["name"].lower()]
    return render_template("store.html", store=store_json(store), items=items[:PAGE_ITEMS], total=len(items),
                           query=query, mall_names=names(), files=listing_csv.files(store["mall"]),
                           orders=state().orders(store_id, recent=RECENT_ORDERS),
                           notice=request.args.get("notice", ""), error=request.args.get("error", ""))

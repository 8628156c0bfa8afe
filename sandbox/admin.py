"""The JSON admin API for tests, demos and automation (/_sandbox/…), and the pages a person uses: the list of
sandbox stores with their credentials and fault switches, and each store's "EC site" page with its stock."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, url_for

from . import catalog, listing_csv
from .common import state
from .state import MALLS

bp = Blueprint("admin", __name__)

MALL_NAMES = {"rakuten": "楽天市場 (RMS API)", "rakuten-ftp": "楽天市場 (FTP)", "yahoo": "Yahoo!ショッピング",
              "shopify": "Shopify", "amazon": "Amazon.co.jp"}
FAULT_NAMES = ("auth", "maintenance", "error_5xx", "throttle", "timeout", "hang_seconds", "reflection_delay")


def endpoint_for(store: dict, public_url: str, ftp_host: str, ftp_port: int) -> str:
    """The base URL to configure in Tatenpo: everything before the mall's real path."""
    if store["mall"] == "rakuten-ftp":
        return f"ftp://{ftp_host}:{ftp_port}"
    if store["mall"] == "shopify":
        return f"{public_url}/shopify/{store['shop']}"
    return f"{public_url}/{store['mall']}"


def endpoint_of(store: dict) -> str:
    config = current_app.config
    return endpoint_for(store, config["PUBLIC_URL"], config["FTP_HOST"], config["FTP_PORT"])


def store_json(store: dict) -> dict[str, Any]:
    data = {"id": store["id"], "mall": store["mall"], "name": store["name"], "endpoint": endpoint_of(store),
            "credentials": store["credentials"], "faults": store["faults"],
            "page": url_for("admin.store_page", store_id=store["id"], _external=True)}
    if store["mall"] == "rakuten-ftp":
        data["host"] = current_app.config["FTP_HOST"]
        data["port"] = current_app.config["FTP_PORT"]
        if current_app.config.get("SFTP_PORT"):  # the same account over SFTP, as RMS runs it today
            data["sftp_endpoint"] = f"sftp://{current_app.config['FTP_HOST']}:{current_app.config['SFTP_PORT']}"
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


def create(mall: str, items: int, name: str = "", seed: int = 0) -> dict:
    """Create a sandbox store with generated items (also used by Tatenpo's demo set-up, without HTTP)."""
    store = state().create_store(
        mall, name or f"サンドボックス{MALL_NAMES[mall]}",
        lambda store_id: catalog.generate(mall, store_id, items, seed),
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
    mall = body.get("mall")
    if mall not in MALLS:
        return _error(f"mall must be one of {', '.join(MALLS)}.")
    items = body.get("items", 20)
    if not isinstance(items, int) or isinstance(items, bool) or not 0 <= items <= 200_000:
        return _error("items must be an integer from 0 to 200000.")
    store = create(mall, items, str(body.get("name") or ""), int(body.get("seed") or 0))
    response = jsonify(store_json(store))
    response.status_code = 201
    return response


@bp.get("/_sandbox/stores")
def list_stores():
    return jsonify({"stores": [store_json(s) for s in state().stores()]})


@bp.get("/_sandbox/stores/<int:store_id>")
def get_store(store_id: int):
    return jsonify(store_json(_store_or_404(store_id)))


def _item_json(store: dict, item: dict) -> dict[str, Any]:
    data = {"code": item["code"], "variant": item["variant"], "quantity": item["quantity"], "sku": item["sku"],
            "name": item["name"]}
    if store["mall"] == "shopify":
        data["handle"] = item["extra"].get("handle")
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
        elif value in ("on", "true"):
            changes[name] = True
        else:
            try:
                changes[name] = int(value)
            except ValueError:
                continue
    state().set_faults(store_id, changes)
    return redirect(url_for("admin.store_page", store_id=store_id))


@bp.get("/_sandbox/stores/<int:store_id>/calls")
def calls(store_id: int):
    _store_or_404(store_id)
    return jsonify({"calls": state().calls(store_id)})


@bp.get("/")
def index():
    return render_template("index.html", stores=[store_json(s) for s in state().stores()], mall_names=MALL_NAMES)


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
                           query=query, mall_names=MALL_NAMES, files=listing_csv.files(store["mall"]))

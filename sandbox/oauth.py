"""The malls' authorization servers, as each mall documents them (facts and sources: docs/malls/yahoo.md,
docs/malls/amazon.md, docs/malls/shopify.md):

- Yahoo! ID連携 v2 (YConnect), Authorization Code flow: the consent page GET /yahoo/yconnect/v2/authorization
  (response_type=code, client_id, redirect_uri, scope, state, nonce) and the token endpoint
  POST /yahoo/yconnect/v2/token with grant_type=authorization_code or refresh_token (client credentials by
  Basic auth or in the form).
- Amazon SP-API website authorization workflow: the Seller Central consent page
  GET /amazon/apps/authorize/consent (application_id, state, redirect_uri, version=beta) that sends the browser
  back with spapi_oauth_code, state and selling_partner_id; Login with Amazon's token endpoint
  POST /amazon/auth/o2/token with grant_type=authorization_code or refresh_token (credentials in the form).
- Shopify authorization code grant: GET /shopify/<shop>/admin/oauth/authorize (client_id, scope, redirect_uri,
  state) back with code, hmac, host, shop, state, timestamp; POST /shopify/<shop>/admin/oauth/access_token
  {client_id, client_secret, code} → {access_token, scope}.

Each sandbox store is also its own app at the mall: its client ID and secret are among the store's
credentials (Amazon adds the app's application_id), and the app's callback URLs are registered on the app's
page /stores/<id>/app or with POST /_sandbox/stores/<id>/redirect_uris {"redirect_uri": …}, as a developer
registers them in the mall's developer console. A consent request with a callback URL not registered there is
refused on the mall's own page, never redirected. Codes are single-use and short-lived. Errors of the token
endpoints are the OAuth JSON {"error", "error_description"}.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Optional
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for

from .common import record, state

yahoo_bp = Blueprint("yahoo_oauth", __name__, url_prefix="/yahoo/yconnect/v2")
amazon_bp = Blueprint("amazon_oauth", __name__, url_prefix="/amazon")
shopify_bp = Blueprint("shopify_oauth", __name__, url_prefix="/shopify/<shop>/admin/oauth")
apps_bp = Blueprint("apps", __name__)

# How long an authorization code may wait for its exchange. YConnect v2: 10 minutes (Authorization Code flow,
# 認可コード); SP-API: the spapi_oauth_code expires after five minutes (website authorization workflow).
# [inferred] Shopify documents no lifetime; ten minutes, as the others.
CODE_SECONDS = {"yahoo": 600, "amazon": 300, "shopify": 600}
# What the consent pages call each mall's authorization.
CONSENT_TITLES = {"yahoo": "Yahoo! ID連携", "amazon": "Amazon セラーセントラル", "shopify": "Shopify"}
# YConnect scopes the consent page explains (Yahoo! ID連携 v2 "Scope"); the store API asks for openid.
YAHOO_SCOPES = {"openid": "ユーザー識別子", "profile": "プロフィール", "email": "メールアドレス", "address": "住所"}


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    return response


def _client() -> tuple[str, str]:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme == "Basic" and value:
        try:
            client_id, _, secret = base64.b64decode(value).decode("utf-8").partition(":")
            return client_id, secret
        except (ValueError, UnicodeDecodeError):
            return "", ""
    return request.form.get("client_id", ""), request.form.get("client_secret", "")


# The app's callback URLs, codes and refresh tokens -------------------------------------------------------------

def redirect_uris(store_id: int) -> list[str]:
    rows = state().query("SELECT redirect_uri FROM oauth_redirects WHERE store_id = ? ORDER BY created, redirect_uri",
                         (store_id,))
    return [row["redirect_uri"] for row in rows]


def register_redirect_uri(store_id: int, uri: str) -> Optional[str]:
    """Register a callback URL for the store's app; the reason when it is not one (http(s), no fragment)."""
    url = urlsplit(uri)
    if url.scheme not in ("http", "https") or not url.hostname or url.fragment or len(uri) > 500:
        return "コールバックURLは http:// または https:// で始まるURLで入力してください(# 以降は不可)。"
    with state().tx() as c:
        c.execute("INSERT OR IGNORE INTO oauth_redirects (store_id, redirect_uri, created) VALUES (?, ?, ?)",
                  (store_id, uri, time.time()))
    return None


def _issue_code(store: dict, redirect_uri: str, scope: str) -> str:
    code = secrets.token_urlsafe(24)
    with state().tx() as c:
        c.execute("INSERT INTO oauth_codes (code, store_id, redirect_uri, scope, expires_at) VALUES (?, ?, ?, ?, ?)",
                  (code, store["id"], redirect_uri, scope, time.time() + CODE_SECONDS[store["mall"]]))
    return code


def _take_code(code: str, store_id: int) -> Optional[dict]:
    """The code's grant, once: a used, expired or unknown code (or another app's) gives None."""
    with state().tx() as c:
        row = c.execute("SELECT * FROM oauth_codes WHERE code = ? AND store_id = ?", (code, store_id)).fetchone()
        if row is None or row["used"]:
            return None
        c.execute("UPDATE oauth_codes SET used = 1 WHERE code = ?", (code,))
        return dict(row) if row["expires_at"] > time.time() else None


def _issue_refresh_token(store: dict, prefix: str) -> str:
    token = prefix + secrets.token_hex(12)
    with state().tx() as c:
        c.execute("INSERT INTO refresh_tokens (token, store_id, created) VALUES (?, ?, ?)",
                  (token, store["id"], time.time()))
    return token


def _known_refresh_token(store: dict, token: str) -> bool:
    if token and token == store["credentials"].get("refresh_token"):
        return True
    return bool(token) and bool(state().query("SELECT 1 FROM refresh_tokens WHERE token = ? AND store_id = ?",
                                              (token, store["id"])))


# Consent pages -------------------------------------------------------------------------------------------------

def _refused_page(store: Optional[dict], mall: str, message: str) -> Response:
    """The mall's own error page: a request whose client or callback URL is not registered is never redirected
    (RFC 6749 4.1.2.1; each mall's consent page does the same)."""
    body = render_template("oauth_error.html", store=store, title=CONSENT_TITLES[mall], message=message)
    return Response(body, status=400, mimetype="text/html")


def _back(redirect_uri: str, **params: str) -> Response:
    glue = "&" if urlsplit(redirect_uri).query else "?"
    return redirect(redirect_uri + glue + urlencode({k: v for k, v in params.items() if v is not None}), code=302)


def _consent(store: dict, mall: str, fields: dict[str, str], scopes: list[str]) -> Response:
    return Response(render_template("consent.html", store=store, mall=mall, title=CONSENT_TITLES[mall], fields=fields,
                                    scopes=scopes, action=request.path), mimetype="text/html")


def _decision() -> Optional[str]:
    """'allow' or 'deny' from the consent form's buttons (許可する / 拒否する); None on the first visit."""
    return request.form.get("decision") if request.method == "POST" else None


def _params() -> dict[str, str]:
    source = request.form if request.method == "POST" else request.args
    return {key: value for key, value in source.items() if key != "decision"}


# Yahoo! ID連携 v2 ----------------------------------------------------------------------------------------------

@yahoo_bp.route("/authorization", methods=["GET", "POST"])
def yahoo_authorization():
    """YConnect v2 Authorization Code flow, the authorization endpoint (developer.yahoo.co.jp/yconnect/v2/
    authorization_code/authorization.html): an unknown client_id or a redirect_uri not registered for it is an
    error page; other errors go back to the redirect_uri as error, error_description and state."""
    params = _params()
    client_id, redirect_uri, state_value = params.get("client_id", ""), params.get("redirect_uri", ""), params.get("state")
    store = state().find_store("yahoo", client_id=client_id) if client_id else None
    if store is None:
        return record(None, "authorization", _refused_page(None, "yahoo", "アプリケーションIDが登録されていません。"))
    if redirect_uri not in redirect_uris(store["id"]):
        return record(store, "authorization", _refused_page(
            store, "yahoo", "コールバックURLがアプリケーションに登録されたものと一致しません。"))
    if params.get("response_type") != "code":
        return record(store, "authorization", _back(redirect_uri, error="unsupported_response_type",
                                                    error_description="response_type must be code", state=state_value))
    scopes = params.get("scope", "").split()
    if not scopes or any(scope not in YAHOO_SCOPES for scope in scopes):
        return record(store, "authorization", _back(redirect_uri, error="invalid_scope",
                                                    error_description="unknown or missing scope", state=state_value))
    if "openid" in scopes and not params.get("nonce"):
        # nonce is required with the openid scope (Authorization Code flow, リクエストパラメーター).
        return record(store, "authorization", _back(redirect_uri, error="invalid_request",
                                                    error_description="nonce is required", state=state_value))
    decision = _decision()
    if decision is None:
        return record(store, "authorization", _consent(store, "yahoo", params, [YAHOO_SCOPES[s] for s in scopes]))
    if decision != "allow":
        return record(store, "authorization", _back(redirect_uri, error="access_denied",
                                                    error_description="the user denied the authorization",
                                                    state=state_value))
    code = _issue_code(store, redirect_uri, " ".join(scopes))
    return record(store, "authorization", _back(redirect_uri, code=code, state=state_value))


def _token(mall: str, token_type: str, refresh_prefix: str) -> tuple[Optional[dict], Response]:
    grant = request.form.get("grant_type")
    if grant not in ("refresh_token", "authorization_code"):
        return None, _oauth_error("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
    client_id, secret = _client()
    store = state().find_store(mall, client_id=client_id) if client_id else None
    if store is None or store["credentials"].get("client_secret") != secret:
        return store, _oauth_error("invalid_client", "client authentication failed", 401)
    if store["faults"].get("auth") in ("revoked", "wrong"):
        return store, _oauth_error("invalid_grant", "the grant is invalid or expired")
    answer = {}
    if grant == "authorization_code":
        code = _take_code(request.form.get("code", ""), store["id"])
        if code is None:
            return store, _oauth_error("invalid_grant", "the authorization code is invalid, expired or already used")
        if request.form.get("redirect_uri", "") != code["redirect_uri"]:
            return store, _oauth_error("invalid_grant", "redirect_uri does not match the authorization request")
        answer["refresh_token"] = _issue_refresh_token(store, refresh_prefix)
    elif not _known_refresh_token(store, request.form.get("refresh_token", "")):
        return store, _oauth_error("invalid_grant", "refresh token is invalid or expired")
    token, seconds = state().mint_token(store["id"])
    return store, jsonify({"access_token": token, "token_type": token_type, "expires_in": seconds, **answer})


@yahoo_bp.post("/token")
def yahoo_token():
    # YConnect v2 token endpoint: {"access_token", "token_type": "Bearer", "expires_in": 3600, "refresh_token"}.
    store, response = _token("yahoo", "Bearer", "sbx-rt-")
    return record(store, "token", response)


# Amazon: Seller Central consent and Login with Amazon --------------------------------------------------------

@amazon_bp.route("/apps/authorize/consent", methods=["GET", "POST"])
def amazon_consent():
    """SP-API website authorization workflow (developer-docs.amazon.com/sp-api/docs/website-authorization-workflow):
    the selling partner confirms; the browser goes to the redirect_uri (one of the app's registered OAuth
    redirect URIs; the first when none is given) with state, selling_partner_id and spapi_oauth_code."""
    params = _params()
    application_id = params.get("application_id", "")
    store = state().find_store("amazon", application_id=application_id) if application_id else None
    if store is None:
        return record(None, "consent", _refused_page(None, "amazon", "アプリケーションが見つかりません。"))
    registered = redirect_uris(store["id"])
    redirect_uri = params.get("redirect_uri") or (registered[0] if registered else "")
    if redirect_uri not in registered:
        return record(store, "consent", _refused_page(
            store, "amazon", "リダイレクトURIがアプリケーションに登録されたOAuthリダイレクトURIと一致しません。"))
    decision = _decision()
    if decision is None:
        return record(store, "consent", _consent(store, "amazon", params, ["在庫と出品(Product Listing)"]))
    if decision != "allow":
        # [inferred] Amazon documents no answer for a refusal; the sandbox answers as OAuth 2.0 does (RFC 6749 4.1.2.1).
        return record(store, "consent", _back(redirect_uri, error="access_denied", state=params.get("state")))
    code = _issue_code(store, redirect_uri, "")
    return record(store, "consent", _back(redirect_uri, state=params.get("state"),
                                          selling_partner_id=store["credentials"]["seller_id"],
                                          spapi_oauth_code=code))


@amazon_bp.post("/auth/o2/token")
def amazon_token():
    # LWA: {"access_token": "Atza|…", "refresh_token": "Atzr|…", "token_type": "bearer", "expires_in": 3600}.
    store, response = _token("amazon", "bearer", "Atzr|")
    return record(store, "token", response)


# Shopify ---------------------------------------------------------------------------------------------------------

def shopify_hmac(params: dict[str, str], secret: str) -> str:
    """The hmac of a redirect's query: every other parameter, sorted, joined as key=value with &, HMAC-SHA256 with
    the app's client secret, hex (shopify.dev, authorization code grant, "Verify the installation request")."""
    message = "&".join(f"{key}={value}" for key, value in sorted(params.items()) if key != "hmac")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


@shopify_bp.route("/authorize", methods=["GET", "POST"])
def shopify_authorize(shop: str):
    """Shopify authorization code grant, "Ask for permission" (shopify.dev/docs/apps/build/authentication-
    authorization/access-tokens/authorization-code-grant): the merchant installs; the browser goes to the
    redirect_uri (one of the app's allowed redirection URLs) with code, hmac, host, shop, state, timestamp."""
    params = _params()
    store = state().store_by_shop("shopify", shop)
    if store is None or not params.get("client_id") or params["client_id"] != store["credentials"].get("client_id"):
        return record(store, "authorize", _refused_page(store, "shopify", "アプリが見つかりません(client_id が違います)。"))
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in redirect_uris(store["id"]):
        return record(store, "authorize", _refused_page(
            store, "shopify", "redirect_uri がアプリの許可されたリダイレクトURLにありません。"))
    # The consent page lists exactly the scopes the code (and so the access_token answer's `scope`) grants.
    scopes = [s for s in params.get("scope", "").split(",") if s]
    decision = _decision()
    if decision is None:
        return record(store, "authorize", _consent(store, "shopify", params, scopes))
    if decision != "allow":
        # [inferred] Shopify documents no redirect for a cancelled install; the sandbox answers as OAuth 2.0 does.
        return record(store, "authorize", _back(redirect_uri, error="access_denied", state=params.get("state")))
    domain = f"{shop}.myshopify.com"
    answer = {"code": _issue_code(store, redirect_uri, ",".join(scopes)),
              "host": base64.urlsafe_b64encode(f"admin.shopify.com/store/{shop}".encode()).decode().rstrip("="),
              "shop": domain, "state": params.get("state", ""), "timestamp": str(int(time.time()))}
    answer["hmac"] = shopify_hmac(answer, store["credentials"].get("client_secret", ""))
    return record(store, "authorize", _back(redirect_uri, **answer))


@shopify_bp.post("/access_token")
def shopify_access_token(shop: str):
    """{client_id, client_secret, code} (JSON or form) → {"access_token", "scope"}: the app's offline token, the one
    the store's page shows as access_token (an installed app has one)."""
    body = request.get_json(silent=True) if request.is_json else request.form
    body = body if isinstance(body, dict) or hasattr(body, "get") else {}
    store = state().store_by_shop("shopify", shop)
    if store is None:
        return record(None, "access_token", _oauth_error("invalid_request", "Shop not found", 404))
    creds = store["credentials"]
    if body.get("client_id") != creds.get("client_id") or body.get("client_secret") != creds.get("client_secret"):
        return record(store, "access_token", _oauth_error("invalid_client", "Client credentials are invalid", 401))
    code = _take_code(str(body.get("code") or ""), store["id"])
    if code is None:
        return record(store, "access_token", _oauth_error(
            "invalid_request", "The authorization code was not found or was already used"))
    return record(store, "access_token", jsonify({"access_token": creds["access_token"], "scope": code["scope"]}))


# The app's page: where the shop registers its callback URLs ----------------------------------------------------

@apps_bp.route("/stores/<int:store_id>/app", methods=["GET", "POST"])
def app_page(store_id: int):
    store = state().store(store_id)
    if store is None:
        return Response("not found", status=404)
    error = notice = ""
    if request.method == "POST":
        uri = request.form.get("redirect_uri", "").strip()
        error = register_redirect_uri(store_id, uri) or ""
        notice = "" if error else f"コールバックURLを登録しました: {uri}"
    return render_template("app.html", store=store, redirect_uris=redirect_uris(store_id), error=error,
                           notice=notice, store_page=url_for("admin.store_page", store_id=store_id))


@apps_bp.post("/_sandbox/stores/<int:store_id>/redirect_uris")
def register_redirect(store_id: int):
    """{"redirect_uri": …} → {"redirect_uris": [...]} (400 {"error"} for a bad URL)."""
    if state().store(store_id) is None:
        return _oauth_error("not_found", "no such store", 404)
    body = request.get_json(silent=True) or {}
    error = register_redirect_uri(store_id, str(body.get("redirect_uri", "")).strip())
    if error:
        response = jsonify({"error": error})
        response.status_code = 400
        return response
    return jsonify({"redirect_uris": redirect_uris(store_id)})


@apps_bp.get("/_sandbox/stores/<int:store_id>/redirect_uris")
def list_redirects(store_id: int):
    return jsonify({"redirect_uris": redirect_uris(store_id)})

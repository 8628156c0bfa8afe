"""The token endpoints that hand out one-hour access tokens for a refresh token: Yahoo! ID連携 v2
(/yahoo/yconnect/v2/token, client credentials by Basic auth or form) and Login with Amazon
(/amazon/auth/o2/token, credentials in the form). Errors are the OAuth JSON {"error", "error_description"}."""
from __future__ import annotations

import base64
from typing import Optional

from flask import Blueprint, Response, jsonify, request

from .common import record, state

yahoo_bp = Blueprint("yahoo_oauth", __name__, url_prefix="/yahoo/yconnect/v2")
amazon_bp = Blueprint("amazon_oauth", __name__, url_prefix="/amazon/auth/o2")


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


def _token(mall: str) -> tuple[Optional[dict], Response]:
    if request.form.get("grant_type") != "refresh_token":
        return None, _oauth_error("unsupported_grant_type", "grant_type must be refresh_token")
    client_id, secret = _client()
    store = state().find_store(mall, client_id=client_id) if client_id else None
    if store is None or store["credentials"].get("client_secret") != secret:
        return store, _oauth_error("invalid_client", "client authentication failed", 401)
    if request.form.get("refresh_token") != store["credentials"].get("refresh_token") or \
            store["faults"].get("auth") in ("revoked", "wrong"):
        return store, _oauth_error("invalid_grant", "refresh token is invalid or expired")
    token, seconds = state().mint_token(store["id"])
    return store, jsonify({"access_token": token, "token_type": "Bearer", "expires_in": seconds})


@yahoo_bp.post("/token")
def yahoo_token():
    store, response = _token("yahoo")
    return record(store, "token", response)


@amazon_bp.post("/token")
def amazon_token():
    store, response = _token("amazon")
    return record(store, "token", response)

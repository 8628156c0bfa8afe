"""Authorizing Tatenpo in the browser instead of pasting tokens: each mall's own authorization flow, as the
connector declares it (`authorization = …` on the connector class; None where the mall has none).

A flow builds the URL of the mall's consent page, reads the mall's answer at Tatenpo's callback, and exchanges
the code for tokens over HTTP (malls/http.py). Like every connector module it never touches the database: the
state that binds an answer to the shop's session, and storing the tokens, are tatenpo/setup/authorization.py's.
The protocol facts and their sources: docs/malls/yahoo.md, docs/malls/amazon.md, docs/malls/shopify.md.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlencode

import requests
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from tatenpo.malls.base import MallError
from tatenpo.malls.http import HttpClient, server_trouble
from tatenpo.malls.pacing import Pacer

# A shop's own domain in Shopify's answers (shopify.dev, authorization code grant, "Security checks").
SHOPIFY_SHOP = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")


class AuthorizationRefused(Exception):
    """The mall's answer cannot be used: the shop refused (`denied`), the mall reported an error, or the answer
    failed a check. The message is for the shop, in its language."""

    def __init__(self, message: Any, *, denied: bool = False) -> None:
        super().__init__(str(message))
        self.message = message
        self.denied = denied


@dataclass(frozen=True)
class Grant:
    """What the authorization gave: credential values to store, and the access token's life (seconds)."""

    credentials: dict[str, str]
    expires_in: Optional[int] = None


@dataclass(frozen=True)
class Answer:
    """The mall's answer at the callback: the code, and credentials the answer itself names."""

    code: str
    credentials: dict[str, str] = field(default_factory=dict)


def _at(endpoint: Optional[str], real_url: str, path: str) -> str:
    """The mall's own URL, or the same path under a store's other endpoint (the sandbox malls)."""
    return endpoint.rstrip("/") + path if endpoint else real_url


def _oauth_error(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    return str(body.get("error_description") or body.get("error") or f"HTTP {response.status_code}")


class AuthorizationFlow(ABC):
    """One mall's flow. `app_fields`: the credential keys the flow needs before it starts (the app's client ID
    and secret, …), entered on the store's settings page as today."""

    label: Any  # what the settings page calls the mall's authorization
    mall_name: str
    app_fields: tuple[str, ...]

    @abstractmethod
    def authorize_url(self, endpoint: Optional[str], credentials: Mapping[str, str], redirect_uri: str,
                      state: str) -> str:
        """The mall's consent page for this app, sending the shop back to `redirect_uri` with `state`."""

    @abstractmethod
    def read_answer(self, args: Mapping[str, str], credentials: Mapping[str, str]) -> Answer:
        """The code in the mall's answer; AuthorizationRefused for a refusal, an error or a failed check."""

    @abstractmethod
    def exchange(self, endpoint: Optional[str], credentials: Mapping[str, str], answer: Answer, redirect_uri: str,
                 timeout: float, redis=None) -> Grant:
        """The tokens for the code; AuthorizationRefused when the mall will not give them."""

    def _refusal(self, args: Mapping[str, str]) -> None:
        error = args.get("error")
        if error == "access_denied":
            raise AuthorizationRefused(_l("The authorization was refused on %(mall)s. Nothing was changed.",
                                          mall=self.mall_name), denied=True)
        if error:
            raise AuthorizationRefused(_l("%(mall)s did not authorize Tatenpo (%(error)s). Nothing was changed.",
                                          mall=self.mall_name, error=args.get("error_description") or error))

    def _post(self, url: str, timeout: float, redis, **kwargs) -> dict:
        """POST to the token endpoint once: a code is single-use, so a retry after a lost answer could only fail."""
        http = HttpClient(self.mall_name, Pacer(redis), timeout, retries=0)

        def classify(response: requests.Response) -> Optional[MallError]:
            if response.status_code == 200:
                return None
            trouble = server_trouble(response, self.mall_name)
            if trouble is not None:
                return trouble
            return MallError(_l("%(mall)s did not exchange the authorization code (%(error)s). Nothing was changed.",
                                mall=self.mall_name, error=_oauth_error(response)), transient=False, code="invalid_grant")
        try:
            response = http.call("POST", url, pace=None, classify=classify, **kwargs)
            body = response.json()
        except MallError as exc:
            raise AuthorizationRefused(exc.message) from None
        except ValueError:
            raise AuthorizationRefused(_l("%(mall)s sent an answer Tatenpo cannot read.", mall=self.mall_name)) from None
        finally:
            http.close()
        return body if isinstance(body, dict) else {}

    def _tokens(self, body: dict, *keys: str) -> dict[str, str]:
        found = {key: str(body[key]) for key in keys if body.get(key)}
        if len(found) != len(keys):
            raise AuthorizationRefused(_l("%(mall)s sent an answer Tatenpo cannot read.", mall=self.mall_name))
        return found


class YConnect(AuthorizationFlow):
    """Yahoo! ID連携 v2, Authorization Code flow (developer.yahoo.co.jp/yconnect/v2/authorization_code/): the
    authorization endpoint with response_type=code, client_id, redirect_uri, scope, state and nonce; the answer
    is code and state (or error); the token endpoint takes grant_type=authorization_code, code and redirect_uri
    with the client credentials by Basic auth and answers access_token, refresh_token and expires_in."""

    label = _l("Authorize with Yahoo! ID連携")
    mall_name = "Yahoo!ショッピング"
    app_fields = ("client_id", "client_secret")

    def __init__(self, authorize_url: str, authorize_path: str, token_url: str, token_path: str,
                 scope: str = "openid") -> None:
        self.urls = (authorize_url, authorize_path, token_url, token_path)
        self.scope = scope

    def authorize_url(self, endpoint, credentials, redirect_uri, state):
        # nonce is required with the openid scope; Tatenpo reads no ID token, so it is only sent, never checked.
        query = {"response_type": "code", "client_id": credentials["client_id"], "redirect_uri": redirect_uri,
                 "scope": self.scope, "state": state, "nonce": secrets.token_urlsafe(16)}
        return _at(endpoint, self.urls[0], self.urls[1]) + "?" + urlencode(query)

    def read_answer(self, args, credentials):
        self._refusal(args)
        if not args.get("code"):
            raise AuthorizationRefused(_l("%(mall)s sent no authorization code. Nothing was changed.",
                                          mall=self.mall_name))
        return Answer(args["code"])

    def exchange(self, endpoint, credentials, answer, redirect_uri, timeout, redis=None):
        body = self._post(_at(endpoint, self.urls[2], self.urls[3]), timeout, redis,
                          data={"grant_type": "authorization_code", "code": answer.code, "redirect_uri": redirect_uri},
                          auth=(credentials["client_id"], credentials["client_secret"]))
        return Grant(self._tokens(body, "access_token", "refresh_token"), _seconds(body))


class SellerCentralConsent(AuthorizationFlow):
    """SP-API website authorization workflow (developer-docs.amazon.com/sp-api/docs/website-authorization-workflow):
    Seller Central's consent page with application_id, state, redirect_uri (and version=beta for an app in draft
    status); the answer is state, selling_partner_id and spapi_oauth_code (valid five minutes), exchanged at
    Login with Amazon's token endpoint (grant_type=authorization_code, code, redirect_uri, client_id,
    client_secret in the form) for a refresh token and an access token."""

    label = _l("Authorize in Seller Central")
    mall_name = "Amazon"
    app_fields = ("application_id", "client_id", "client_secret")

    def __init__(self, consent_url: str, consent_path: str, token_url: str, token_path: str) -> None:
        self.urls = (consent_url, consent_path, token_url, token_path)

    def authorize_url(self, endpoint, credentials, redirect_uri, state):
        # A shop's own SP-API app stays in draft status (it is never listed in the Appstore), and an app in draft
        # is authorized only with version=beta (website authorization workflow, "Test your authorization").
        query = {"application_id": credentials["application_id"], "state": state, "redirect_uri": redirect_uri,
                 "version": "beta"}
        return _at(endpoint, self.urls[0], self.urls[1]) + "?" + urlencode(query)

    def read_answer(self, args, credentials):
        self._refusal(args)
        if not args.get("spapi_oauth_code"):
            raise AuthorizationRefused(_l("%(mall)s sent no authorization code. Nothing was changed.",
                                          mall=self.mall_name))
        partner = args.get("selling_partner_id", "")
        return Answer(args["spapi_oauth_code"], {"seller_id": partner} if partner else {})

    def exchange(self, endpoint, credentials, answer, redirect_uri, timeout, redis=None):
        body = self._post(_at(endpoint, self.urls[2], self.urls[3]), timeout, redis,
                          data={"grant_type": "authorization_code", "code": answer.code, "redirect_uri": redirect_uri,
                                "client_id": credentials["client_id"], "client_secret": credentials["client_secret"]})
        return Grant({**self._tokens(body, "access_token", "refresh_token"), **answer.credentials}, _seconds(body))


class ShopifyInstall(AuthorizationFlow):
    """Shopify's authorization code grant (shopify.dev/docs/apps/build/authentication-authorization/access-tokens/
    authorization-code-grant): /admin/oauth/authorize on the shop with client_id, scope, redirect_uri and state;
    the answer carries code, hmac, host, shop, state and timestamp, and is trusted only when its hmac (the other
    parameters sorted, key=value joined by &, HMAC-SHA256 with the app's client secret) matches and shop is the
    store's own myshopify.com domain; POST /admin/oauth/access_token {client_id, client_secret, code} answers
    the offline access_token and the granted scope."""

    label = _l("Install the app on Shopify (authorize)")
    mall_name = "Shopify"
    app_fields = ("shop", "client_id", "client_secret")

    def __init__(self, scopes: tuple[str, ...]) -> None:
        self.scopes = scopes

    @staticmethod
    def _base(endpoint: Optional[str], credentials: Mapping[str, str]) -> str:
        shop = credentials.get("shop", "").strip().removesuffix(".myshopify.com")
        return (endpoint or f"https://{shop}.myshopify.com").rstrip("/")

    def authorize_url(self, endpoint, credentials, redirect_uri, state):
        query = {"client_id": credentials["client_id"], "scope": ",".join(self.scopes), "redirect_uri": redirect_uri,
                 "state": state}
        return self._base(endpoint, credentials) + "/admin/oauth/authorize?" + urlencode(query)

    def read_answer(self, args, credentials):
        self._refusal(args)
        expected = signature(args, credentials.get("client_secret", ""))
        if not hmac.compare_digest(expected, str(args.get("hmac", ""))):
            raise AuthorizationRefused(_l("The answer from Shopify failed its signature check (hmac). Nothing was "
                                          "changed."))
        shop = str(args.get("shop", ""))
        own = credentials.get("shop", "").strip().removesuffix(".myshopify.com") + ".myshopify.com"
        if not SHOPIFY_SHOP.match(shop) or shop != own:
            raise AuthorizationRefused(_l("The answer came from another Shopify shop (%(shop)s). Nothing was changed.",
                                          shop=shop or "-"))
        if not args.get("code"):
            raise AuthorizationRefused(_l("%(mall)s sent no authorization code. Nothing was changed.",
                                          mall=self.mall_name))
        return Answer(args["code"])

    def exchange(self, endpoint, credentials, answer, redirect_uri, timeout, redis=None):
        body = self._post(self._base(endpoint, credentials) + "/admin/oauth/access_token", timeout, redis,
                          json={"client_id": credentials["client_id"], "client_secret": credentials["client_secret"],
                                "code": answer.code})
        granted = set(str(body.get("scope", "")).split(","))
        # write_X implies read_X (shopify.dev/docs/api/usage/access-scopes).
        granted |= {"read_" + scope.removeprefix("write_") for scope in granted if scope.startswith("write_")}
        missing = [scope for scope in self.scopes if scope not in granted]
        if missing:
            raise AuthorizationRefused(_("Shopify did not grant %(scopes)s. Nothing was changed.",
                                         scopes=", ".join(missing)))
        return Grant(self._tokens(body, "access_token"))


def signature(args: Mapping[str, str], secret: str) -> str:
    """Shopify's hmac of a redirect's query parameters (every one but hmac itself)."""
    message = "&".join(f"{key}={value}" for key, value in sorted(args.items()) if key != "hmac")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _seconds(body: dict) -> Optional[int]:
    try:
        return int(body["expires_in"])
    except (KeyError, TypeError, ValueError):
        return None

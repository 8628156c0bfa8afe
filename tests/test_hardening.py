"""What keeps the app usable and its files safe when something around it fails: a save while Redis is away
tells the user its sync comes later, the favicon never 404s, and the app's own folders are owner-only."""
from __future__ import annotations

import json
import stat

from tatenpo.platform.extensions import db


def _redis_away(app, tmp_path):
    app.config["REDIS_URL"] = "unix://" + str(tmp_path / "no-redis.sock")


def _stocked_product(make):
    store = make.store(mall="rakuten", immediate_sync=True)
    product = make.product(on_hand=5)
    make.listing(store, product, item_code="item-1")
    return product


def test_an_htmx_save_while_redis_is_away_is_saved_and_says_the_sync_comes_later(app, client, auth, make, tmp_path):
    auth.login()
    product = _stocked_product(make)
    _redis_away(app, tmp_path)
    answer = client.post(f"/products/{product.id}/stock", data={"on_hand": "9"}, headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert json.loads(answer.headers["HX-Trigger"])["tatenpo-notice"] == "保存しました。同期は再開後に送信されます。"
    with app.app_context():
        from tatenpo.models import Product, SyncEntry

        assert db.session.get(Product, product.id).on_hand == 9
        assert db.session.query(SyncEntry).count() == 1  # the schedule has it: the sweep pushes it later


def test_a_plain_save_while_redis_is_away_says_so_on_the_next_page(app, client, auth, make, tmp_path):
    auth.login()
    product = _stocked_product(make)
    _redis_away(app, tmp_path)
    answer = client.post(f"/products/{product.id}/stock", data={"on_hand": "9"}, follow_redirects=True)
    assert "同期は再開後に送信されます" in answer.get_data(as_text=True)


def test_a_save_with_redis_up_says_nothing_about_it(client, auth, make):
    auth.login()
    product = _stocked_product(make)
    answer = client.post(f"/products/{product.id}/stock", data={"on_hand": "9"}, headers={"HX-Request": "true"})
    assert answer.status_code == 200 and "tatenpo-notice" not in answer.headers.get("HX-Trigger", "")


def test_the_favicon_answers_on_every_page_without_a_login(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200 and answer.mimetype == "image/svg+xml" and b"<svg" in answer.data
    assert 'rel="icon"' in client.get("/login").get_data(as_text=True)


def test_the_apps_folders_are_made_for_the_owner_only(app, tmp_path):
    from tatenpo.platform import instance, mail

    app.config["MAIL_SERVER"] = ""
    with app.app_context():
        mail.send("shop@example.jp", "test", "body")
        outbox = mail.outbox_folder()
    nested = instance.private_folder(tmp_path / "a" / "b" / "c")
    for folder in (outbox, nested, nested.parent, nested.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    wide = tmp_path / "wide"
    wide.mkdir(mode=0o755)
    (wide / "file").write_text("x")
    (wide / "file").chmod(0o644)
    assert instance.make_private(wide) == 2
    assert [stat.S_IMODE(p.stat().st_mode) for p in (wide, wide / "file")] == [0o700, 0o600]

"""What every page shares: Japan time, thousands separators, friendly errors."""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint

from tatenpo.platform.web import datetime_local, number


def test_times_are_stored_in_utc_and_shown_in_japan_time(app):
    with app.test_request_context():
        assert datetime_local(datetime(2026, 1, 1, 15, 30)) == "2026/01/02 00:30"
        assert datetime_local(None) == "—"


def test_numbers_show_thousands_separators(app):
    with app.test_request_context():
        assert number(1234567) == "1,234,567"
        assert number(0) == "0"
        assert number(None) == "—"


def test_an_unexpected_error_shows_a_friendly_page_not_a_traceback(app, client, auth):
    blueprint = Blueprint("broken_probe", __name__)

    @blueprint.route("/_probe/broken")
    def broken():
        raise RuntimeError("database exploded: secret=hunter2")

    app.register_blueprint(blueprint)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    auth.login()
    response = client.get("/_probe/broken")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "変更は保存されていません" in page
    assert "hunter2" not in page and "Traceback" not in page


def test_unknown_pages_answer_404_in_japanese(client, auth):
    auth.login()
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "このページは存在しません" in response.get_data(as_text=True)


def _sync_history(app, store, codes):
    from tatenpo.models import SyncAttempt, SyncRun
    from tatenpo.platform.extensions import db

    with app.app_context():
        run = SyncRun(store_id=store.id, trigger="manual", status="failed", total=len(codes))
        db.session.add(run)
        db.session.flush()
        for code in codes:
            db.session.add(SyncAttempt(run_id=run.id, store_id=store.id, listing_code=code, product_code=code,
                                       quantity=1, ok=False, message="=mall said no"))
        db.session.commit()


def _csv_rows(response):
    import csv
    import io

    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"), newline="")))


def test_the_sync_export_never_hands_excel_a_formula(app, client, auth, make):
    store = make.store(name="=HYPERLINK(\"http://evil.example\")")
    _sync_history(app, store, ["+SUM(A1)", "@cmd", "-2+3", "SAFE-1"])
    auth.login()
    rows = _csv_rows(client.get("/sync/export.csv"))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    assert "'=HYPERLINK(\"http://evil.example\")" in cells and "'+SUM(A1)" in cells and "'@cmd" in cells
    assert "'-2+3" in cells and "SAFE-1" in cells and "'=mall said no" in cells


def test_the_sync_export_says_when_it_was_cut(app, client, auth, make, monkeypatch):
    from tatenpo.sync import status

    store = make.store()
    _sync_history(app, store, [f"CODE-{n}" for n in range(4)])
    auth.login()
    monkeypatch.setattr(status, "EXPORT_ROWS", 3)
    rows = _csv_rows(client.get("/sync/export.csv"))
    assert len(rows) == 1 + 3 + 1 and rows[-1][0].startswith("3 行で打ち切りました")
    monkeypatch.setattr(status, "EXPORT_ROWS", 4)
    rows = _csv_rows(client.get("/sync/export.csv"))
    assert len(rows) == 1 + 4 and "打ち切り" not in rows[-1][0]

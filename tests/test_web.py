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

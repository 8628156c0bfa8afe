"""`flask support apply|complete|return`: the support staff's scripts."""
from __future__ import annotations

import json

from rq import Queue

from tatenpo.models import Store, SupportApplication
from tatenpo.platform.extensions import db
from tatenpo.platform.redis_conn import redis
from tatenpo.stock import inventory


def test_apply_then_complete_prints_json_and_issues_addresses(app, runner, make):
    store = make.store(mall="yahoo")
    result = runner.invoke(args=["support", "apply", "--company", "株式会社A", "--contact", "佐藤", "--malls", "yahoo,rakuten", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "pending" and data["malls"] == ["yahoo", "rakuten"]
    done = runner.invoke(args=["support", "complete", str(data["id"]), "--json"])
    assert done.exit_code == 0, done.output
    issued = json.loads(done.output)["order_mail_addresses"]
    with app.app_context():
        assert issued == {str(store.id): db.session.get(Store, store.id).order_mail_address}


def test_unknown_mall_and_missing_application_fail_clearly_and_write_nothing(app, runner):
    bad = runner.invoke(args=["support", "apply", "--company", "A", "--contact", "B", "--malls", "rakuten,mercari"])
    assert bad.exit_code != 0 and "mercari" in bad.output
    missing = runner.invoke(args=["support", "complete", "99"])
    assert missing.exit_code != 0 and "no application 99" in missing.output
    with app.app_context():
        assert db.session.query(SupportApplication).count() == 0


def test_return_needs_a_comment(app, runner, make):
    application = make.application(status="pending")
    result = runner.invoke(args=["support", "return", str(application.id), "--comment", "  "])
    assert result.exit_code != 0
    ok = runner.invoke(args=["support", "return", str(application.id), "--comment", "モール名が不明です"])
    assert ok.exit_code == 0, ok.output
    with app.app_context():
        assert db.session.get(SupportApplication, application.id).status == "returned"


def test_completing_the_application_pushes_what_waited_for_it_at_once(app, runner, make):
    """A store of the applied mall whose stock changed before 設定完了 is pushed right after, whatever its
    interval, and gets its order-mail door token with its address."""
    store = make.store(mall="yahoo", immediate_sync=False)
    make.listing(store, make.product(on_hand=3))
    with app.app_context():
        inventory.schedule_store(db.session.get(Store, store.id))
        db.session.commit()
    applied = json.loads(runner.invoke(args=["support", "apply", "--company", "A", "--contact", "B",
                                             "--malls", "yahoo", "--json"]).output)
    with app.app_context():
        Queue("sync", connection=redis()).empty()
    assert runner.invoke(args=["support", "complete", str(applied["id"])]).exit_code == 0

    with app.app_context():
        queued = Queue("sync", connection=redis()).jobs
    assert [(job.func_name, job.args[0]) for job in queued] == [("tatenpo.jobs.push_store", store.id)]
    with app.app_context():
        assert db.session.get(Store, store.id).inbound_token


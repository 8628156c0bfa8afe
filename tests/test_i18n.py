"""Templates speak the request's language — Japanese by default — and follow force_locale when a part of the
request (a mail to someone else) is in another language, then come back."""
from __future__ import annotations

from flask import render_template_string
from flask_babel import force_locale


def test_templates_translate_in_the_requests_language_and_follow_a_forced_one(app):
    template = "{{ _('Sellable') }} / {{ ngettext('%(num)s item', '%(num)s items', 2) }}"
    with app.test_request_context("/"):
        assert render_template_string("{{ _('Sellable') }}") == "販売可能数"
        with force_locale("en"):
            assert render_template_string(template) == "Sellable / 2 items"
        assert render_template_string("{{ _('Sellable') }}") == "販売可能数"


def test_missing_or_stale_catalogs_are_compiled_at_start_even_by_several_processes_at_once(tmp_path):
    """`flask --app app run` on a fresh checkout: the .mo files (build output, not in git) are made from the .po."""
    import os
    import shutil
    import threading
    from pathlib import Path

    from babel.support import Translations

    from tatenpo.platform.i18n import compile_catalogs

    folder = tmp_path / "translations"
    shutil.copytree(Path(__file__).resolve().parent.parent / "tatenpo" / "translations", folder,
                    ignore=shutil.ignore_patterns("*.mo"))
    threads = [threading.Thread(target=compile_catalogs, args=(folder,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ja = folder / "ja" / "LC_MESSAGES" / "messages.mo"
    assert Translations.load(str(folder), ["ja"]).ugettext("Sellable") == "販売可能数"
    assert [p.name for p in folder.rglob("*.tmp")] == []
    assert compile_catalogs(folder) == []  # up to date: nothing to do
    po = ja.with_suffix(".po")
    os.utime(po, (ja.stat().st_mtime + 10, ja.stat().st_mtime + 10))  # the .po was edited since
    assert compile_catalogs(folder) == [ja]


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

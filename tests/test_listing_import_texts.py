"""The texts the importer works out for 100,000 rows by its own quick paths are exactly the general ones: the
attributes' JSON (bulk.BulkWriter.json) and the folded titles (linking.fold_title) that search texts use."""
from __future__ import annotations

import json

import pytest

from tatenpo.listings.bulk import BulkWriter
from tatenpo.listings.linking import fold_title
from tatenpo.models import fold


@pytest.mark.parametrize("value", [
    {},
    {"item_number": "TS-001", "system_sku": "TS-RED", "choices": ["赤", "Ｌ"]},
    {"quoted": 'a "b" \\ c', "controls": "\n\t\r\x00\x1f", "separators": "\u2028\u2029", "emoji": "😀"},
    {"choices": []},
    {"choices": ["", " / "]},
    {"number": 12, "flag": True, "none": None},  # not texts: the encoder itself
    {"nested": {"a": "b"}},
    {"mixed": ["a", 1]},
    {1: "a key that is no text"},
    ["a", "list"],
    "text",
])
def test_attributes_are_written_as_the_json_encoder_writes_them(value):
    assert BulkWriter.json(value) == json.JSONEncoder(ensure_ascii=False).encode(value)
    assert json.loads(BulkWriter.json(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize("title", [
    "", " ", "  ", "Tシャツ", "㈱髙島屋コラボ Tシャツ① 赤", "ＡＢＣ ｶﾞ ｶ\u3099", "x \u0301", "x\u3000y z",
    "Straße ΣΑΣ ς", "ﬁle ½ ㍻ ", " leading", "trailing ", "a  b", "ABC def",
])
def test_a_title_folded_in_parts_is_the_title_folded_whole(title):
    titles: dict[str, str] = {}
    assert fold_title(title, titles) == fold(title)
    assert fold_title(title, titles) == fold(title)  # and again from the cache
    assert fold_title(f"{title} 青", titles) == fold(f"{title} 青")

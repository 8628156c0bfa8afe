"""楽天市場: the shop's copy of 【楽天市場】注文内容ご確認（自動配信メール）, both for API and FTP shops.

The mail is the buyer's confirmation text sent to the addresses in RMS › 店舗設定 › 基本情報設定 ›
店舗・企業詳細情報 › 注文確認メール送り先メールアドレス. Its body is a list of bracketed labels
([受注番号], [日時], [注文者], [支払方法], …, [送付先]) and a [商品] section whose items end at a line of '*'.
Sources for every fact are in docs/malls/order-mails.md.
"""
from __future__ import annotations

import re

from .common import describe, fold, fold_subject, in_domains, jst, notice, to_int, unknown_sender
from .model import MailEnvelope, MailLine, MailOrder, MailParseError, NotAnOrder

MALL = "rakuten"

# The shop's copy comes from the same address as the buyer's mail. Source: MALLS-style public knowledge and
# public importers (github.com/MieMie-mmy/Upside_Golf_RCM, EmailReaderFromDB/Program.cs).
SENDERS = frozenset({"order@rakuten.co.jp"})
# Other 楽天 addresses (RMS notices, the shops' own @shop.rakuten.co.jp) never send the order mail.
DOMAINS = ("rakuten.co.jp",)
ORDER_SUBJECT = "【楽天市場】注文内容ご確認（自動配信メール）"

# Labels are '[受注番号] value'; full-width brackets are folded first.
_LABEL = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(.*)$")
# 受注番号 = <6-digit shop id>-<yyyymmdd>-<serial>. Source: MALLS "[受注番号] 123456-20250314-0123456789".
_NUMBER = re.compile(r"^([0-9]+-[0-9]{8}-[0-9]+)")
# [日時] 2025-03-14 10:23:45 in Japan time. Source: MALLS.
_DATE = re.compile(r"([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})\s+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")
# The [商品] section ends at a line of asterisks; items are divided by lines of dashes. Source: MALLS
# ("the item block ends at a **** line"); the Upside_Golf_RCM importer reads items the same way.
_ITEMS_END = re.compile(r"^\s*\*{4,}")
_ITEM_SEPARATOR = re.compile(r"^\s*[-―－]{4,}\s*$")
# '商品名 (商品番号)': the code is in the LAST parentheses, titles carry their own. Source: MALLS.
_TITLE = re.compile(r"^(.*)[(（]([^()（）]*)[)）]\s*$")
# SKU管理番号:<variantId> since the SKU migration, the colon possibly full-width. Source: MALLS.
_VARIANT = re.compile(r"^SKU管理番号\s*:\s*(\S+)")
# 価格 2,200(円) x 1(個) = 2,200(円): unit price and quantity. Source: MALLS; a tax note such as ※10%税込 may
# follow the total (MALLS-style public knowledge), so only the start of the line is read.
_PRICE = re.compile(r"^価格\s*([0-9][0-9,]*)\s*\(円\)\s*[xX×*]\s*([0-9]+)\s*\(個\)")
_CHOICE = re.compile(r"^([^:：]+?)\s*[:：]\s*(.*)$")
_AFTER_LABEL = re.compile(r"^\s*[\[［][^\]］]*[\]］]\s*(.*)$")
# Labels that may follow an item list (a second destination repeats [送付先] and [商品]); other bracketed
# lines inside [商品] are titles such as '[送料無料] 緑茶 (tea-01)'.
_SECTION_LABELS = frozenset({"商品", "送付先", "お届け先", "注文者", "配送方法", "支払方法", "備考", "ショップ名"})


def parse(envelope: MailEnvelope) -> MailOrder | NotAnOrder:
    known = envelope.sender in SENDERS
    is_order_subject = fold_subject(envelope.subject) == fold_subject(ORDER_SUBJECT)
    if known and is_order_subject:
        return _order(envelope)
    if in_domains(envelope.sender, DOMAINS) and not is_order_subject:
        # Cancellations and other notices carry [受注番号] too: only the subject tells them apart.
        return notice(MALL, envelope)
    return unknown_sender(MALL, envelope)


def _order(envelope: MailEnvelope) -> MailOrder:
    number: str | None = None
    ordered_at = None
    lines: list[MailLine] = []
    text_lines = envelope.text.split("\n")
    index = 0
    while index < len(text_lines):
        label = _LABEL.match(fold(text_lines[index]))
        index += 1
        if not label:
            continue
        name, value = label.group(1), label.group(2).strip()
        if name == "受注番号" and number is None:
            found = _NUMBER.match(value)
            if found:
                number = found.group(1)
        elif name == "日時" and ordered_at is None:
            found = _DATE.search(value)
            if found:
                ordered_at = jst(*(int(part or 0) for part in found.groups()))
        elif name == "商品":
            section = [_AFTER_LABEL.match(text_lines[index - 1]).group(1)] if value else []
            while index < len(text_lines):
                line = text_lines[index]
                next_label = _LABEL.match(fold(line))
                if _ITEMS_END.match(fold(line)) or (next_label and next_label.group(1) in _SECTION_LABELS):
                    break
                section.append(line)
                index += 1
            lines.extend(_items(section))
    if number is None:
        raise MailParseError(f"楽天 order mail without [受注番号]: {describe(envelope)}")
    if not lines:
        raise MailParseError(f"楽天 order mail {number} without items in [商品]")
    return MailOrder(MALL, number, ordered_at or envelope.date, tuple(lines))


def _items(section: list[str]) -> list[MailLine]:
    blocks: list[list[str]] = [[]]
    for line in section:
        if _ITEM_SEPARATOR.match(line):
            blocks.append([])
        elif line.strip():
            blocks[-1].append(line.strip())
    return [_item(block) for block in blocks if block]


def _item(block: list[str]) -> MailLine:
    heading = _TITLE.match(block[0])
    if not heading:
        raise MailParseError(f"楽天 item line without (商品番号): {block[0]!r}")
    title, code = heading.group(1).strip(), heading.group(2).strip()
    variant = ""
    choices: list[tuple[str, str]] = []
    price: tuple[int, int] | None = None
    for line in block[1:]:
        folded = fold(line)
        if price is None and (found := _PRICE.match(folded)):
            price = (to_int(found.group(1)), int(found.group(2)))
        elif price is None and (found := _VARIANT.match(folded)):
            variant = found.group(1)
        elif price is None and (found := _CHOICE.match(line)):
            # 項目・選択肢 lines such as カラー:ブルー; lines after the price line are notes (※10%税込).
            choices.append((found.group(1).strip(), found.group(2).strip()))
    if price is None:
        raise MailParseError(f"楽天 item {code!r} without a 価格 … (個) line")
    return MailLine(item_code=code, variant_code=variant, choices=tuple(choices), title=title,
                    quantity=price[1], unit_price=price[0])

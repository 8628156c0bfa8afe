"""Yahoo!ショッピング: the store's 【Yahoo!ショッピング】注文確認 notification.

Sent to the addresses registered in ストアクリエイターPro › 設定 › アラート・通知設定 (通知設定) with 注文 checked.
The body gives 注文ID and 注文日時, then the items between a line of ￣ and a line of =, each item numbered
（1）, with a code/sub-code line and a '2,200円×2＝4,400円' line. It carries no buyer address.
Sources for every fact are in docs/malls/order-mails.md.
"""
from __future__ import annotations

import re

from .common import describe, fold, fold_subject, in_domains, jst, notice, to_int, unknown_sender
from .model import MailEnvelope, MailLine, MailOrder, MailParseError, NotAnOrder

MALL = "yahoo"

# Store-side notices come from store-shopping-order-master@mail.yahoo.co.jp (public mail filters list it
# for Yahoo!ショッピング store mail, github.com/vyper-japan/mailhub). The order notification's own sender is
# not published, so any address at Yahoo's shopping and mail domains is accepted too.
SENDERS = frozenset({"store-shopping-order-master@mail.yahoo.co.jp"})
DOMAINS = ("shopping.yahoo.co.jp", "mail.yahoo.co.jp")
# 【Yahoo!ショッピング】注文確認：… Source: MALLS; public importers match this prefix
# (github.com/MieMie-mmy/Upside_Golf_RCM, EmailReaderFromDB/Program.cs).
ORDER_SUBJECT_PREFIX = "【Yahoo!ショッピング】注文確認"

# 注文ID　：<storeid>-<number> (a full-width space before the colon). Source: MALLS.
_NUMBER = re.compile(r"注文ID\s*:\s*([A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*-[0-9]+)")
# 注文日時：2025年03月14日 10時23分45秒, Japan time. Source: MALLS.
_DATE = re.compile(r"注文日時\s*:\s*([0-9]{4})年\s*([0-9]{1,2})月\s*([0-9]{1,2})日\s*([0-9]{1,2})時\s*([0-9]{1,2})分"
                   r"(?:\s*([0-9]{1,2})秒)?")
# Items sit between a line of ￣ and a line of =, each starting with （1）. Source: MALLS and the public
# importers that split the list at '\n（2）'.
_ITEMS_START = re.compile(r"^\s*￣{3,}\s*$")
_ITEMS_END = re.compile(r"^\s*={3,}")
_ITEM_HEAD = re.compile(r"^\s*[(（]\s*([0-9]+)\s*[)）]\s*(.*)$")
# 'code/sub-code', or 'code' alone for an item without options. Source: MALLS.
_CODE = re.compile(r"^([^\s/]+)(?:/([^\s/]+))?$")
# 2,200円×2＝4,400円 with full-width × and ＝. Source: MALLS.
_PRICE = re.compile(r"([0-9][0-9,]*)\s*円\s*[×xX*]\s*([0-9]+)\s*=\s*([0-9][0-9,]*)\s*円")
_CHOICE = re.compile(r"^([^:：]+?)\s*[:：]\s*(.*)$")


def parse(envelope: MailEnvelope) -> MailOrder | NotAnOrder:
    known = envelope.sender in SENDERS or in_domains(envelope.sender, DOMAINS)
    if not known:
        return unknown_sender(MALL, envelope)
    if not fold_subject(envelope.subject).startswith(fold_subject(ORDER_SUBJECT_PREFIX)):
        return notice(MALL, envelope)
    return _order(envelope)


def _order(envelope: MailEnvelope) -> MailOrder:
    text_lines = envelope.text.split("\n")
    number = next((m.group(1) for line in text_lines if (m := _NUMBER.search(fold(line)))), None)
    if number is None:
        raise MailParseError(f"Yahoo order mail without 注文ID: {describe(envelope)}")
    date = next((m for line in text_lines if (m := _DATE.search(fold(line)))), None)
    ordered_at = jst(*(int(part or 0) for part in date.groups())) if date else envelope.date
    section = _section(text_lines)
    if section is None:
        raise MailParseError(f"Yahoo order mail {number} without the ￣…=== item list")
    blocks: list[list[str]] = []
    for line in section:
        if _ITEM_HEAD.match(fold(line)):
            blocks.append([line.strip()])
        elif blocks and line.strip():
            blocks[-1].append(line.strip())
    if not blocks:
        raise MailParseError(f"Yahoo order mail {number} without （1） items")
    return MailOrder(MALL, number, ordered_at, tuple(_item(block) for block in blocks))


def _section(text_lines: list[str]) -> list[str] | None:
    """The lines between the ￣ line that opens the item list and the = line that closes it."""
    for start, line in enumerate(text_lines):
        if not _ITEMS_START.match(line):
            continue
        following = [candidate for candidate in text_lines[start + 1:] if candidate.strip()]
        if not following or not _ITEM_HEAD.match(fold(following[0])):
            continue
        end = next((i for i in range(start + 1, len(text_lines)) if _ITEMS_END.match(fold(text_lines[i]))),
                   len(text_lines))
        return text_lines[start + 1:end]
    return None


def _item(block: list[str]) -> MailLine:
    title = re.sub(r"^\s*[(（]\s*[0-9０-９]+\s*[)）]\s*", "", block[0]).strip()
    code = _CODE.match(fold(block[1])) if len(block) > 1 else None
    if not code:
        raise MailParseError(f"Yahoo item {title!r} without its code/sub-code line")
    choices: list[tuple[str, str]] = []
    price: tuple[int, int] | None = None
    for line in block[2:]:
        if price is None and (found := _PRICE.search(fold(line))):
            price = (to_int(found.group(1)), int(found.group(2)))
        elif price is None and (found := _CHOICE.match(line)):
            choices.append((found.group(1).strip(), found.group(2).strip()))
    if price is None:
        raise MailParseError(f"Yahoo item {code.group(1)!r} without its 円×数量＝ line")
    return MailLine(item_code=code.group(1), variant_code=code.group(2) or "", choices=tuple(choices), title=title,
                    quantity=price[1], unit_price=price[0])

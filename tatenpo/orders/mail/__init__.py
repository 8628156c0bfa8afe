"""Order mails (自動受注メール取込): turn a raw mail that reached a store's order-mail address into the mall's
order, or into the reason it is not one.

Pure logic on the standard library. `read_mail` decodes the mail (reading.py); one module per mall family
parses it; `parse_order_mail` picks the parser of the receiving store's mall from one registry. The formats,
their sources and the mall settings that send the mail are described in docs/malls/order-mails.md.
"""
from __future__ import annotations

from types import ModuleType

from . import amazon, rakuten, shopify, yahoo
from .common import describe
from .model import MailEnvelope, MailLine, MailOrder, MailParseError, NotAnOrder
from .reading import read_mail

# The receiving store's mall family → its parser; 'rakuten' covers the API and the FTP shops alike.
PARSERS: dict[str, ModuleType] = {
    rakuten.MALL: rakuten,
    yahoo.MALL: yahoo,
    amazon.MALL: amazon,
    shopify.MALL: shopify,
}
MALLS = tuple(PARSERS)

__all__ = ["MALLS", "MailEnvelope", "MailLine", "MailOrder", "MailParseError", "NotAnOrder", "parse_order_mail",
           "read_mail"]


def parse_order_mail(raw: bytes, mall: str) -> MailOrder | NotAnOrder:
    """The order in a raw mail sent to a store of `mall`, or why it is not one.

    Raises MailParseError for a mail that is the mall's order mail (sender and subject) but whose body
    cannot be read, and ValueError for a mall that has no order mail parser."""
    parser = PARSERS.get(mall)
    if parser is None:
        raise ValueError(f"no order-mail parser for mall {mall!r}; known: {', '.join(MALLS)}")
    envelope = read_mail(raw)
    result = parser.parse(envelope)
    if isinstance(result, NotAnOrder) and result.reason == "unknown-sender":
        # A mail another mall would take as its order: the shop registered this address in the wrong mall.
        for other, other_parser in PARSERS.items():
            if other != mall and _is_order(other_parser, envelope):
                return NotAnOrder("wrong-mall", f"a {other} order mail sent to a {mall} store's address, "
                                                f"{describe(envelope)}")
    return result


def _is_order(parser: ModuleType, envelope: MailEnvelope) -> bool:
    try:
        return isinstance(parser.parse(envelope), MailOrder)
    except MailParseError:
        return True

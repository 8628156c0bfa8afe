"""Reading a raw RFC 822 mail into a MailEnvelope: decoded headers, the body as plain text, and for a
hand-forwarded copy the original sender, subject and date found in the quoted header block.

Japanese order mail arrives in every encoding the malls and the shops' mail clients produce: ISO-2022-JP
(7bit) with Windows' extra characters, Shift_JIS labels that are really CP932, UTF-8 in quoted-printable or
base64, HTML-only bodies, RFC 2047 subjects split in the middle of a character, raw 8-bit headers. Nothing
here raises on a malformed mail: what cannot be decoded becomes U+FFFD and the parsers decide.
"""
from __future__ import annotations

import base64
import binascii
import email
import re
from datetime import UTC, datetime
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser

from .common import jst
from .model import MailEnvelope

# --- Charsets --------------------------------------------------------------------------------------------

# Mail labelled Shift_JIS is written by Windows code page 932 (①, ㈱, 髙, ～ are not in Shift_JIS proper);
# the same holds for EUC-JP and CP51932. Source: MALLS-style public knowledge: "Shift_JIS labels are CP932".
_CODECS: dict[str, tuple[str, ...]] = {
    "shift_jis": ("cp932", "shift_jis_2004"),
    "shift-jis": ("cp932", "shift_jis_2004"),
    "sjis": ("cp932", "shift_jis_2004"),
    "x-sjis": ("cp932", "shift_jis_2004"),
    "windows-31j": ("cp932",),
    "cp932": ("cp932",),
    "ms932": ("cp932",),
    "euc-jp": ("euc_jp", "euc_jis_2004"),
    "x-euc-jp": ("euc_jp", "euc_jis_2004"),
    "utf-8": ("utf-8",),
    "utf8": ("utf-8",),
    "us-ascii": ("utf-8", "cp932"),
    "ascii": ("utf-8", "cp932"),
}
_ISO2022 = ("iso-2022-jp", "iso-2022-jp-1", "iso-2022-jp-2", "iso-2022-jp-3", "iso-2022-jp-2004", "csiso2022jp",
            "cp50220", "cp50221", "cp50222")
# Bytes without a usable label: UTF-8 is strict enough to try first, CP932 accepts most of the rest.
_UNLABELLED = ("utf-8", "cp932")

_ESCAPE = re.compile(rb"(\x1b(?:\(B|\(J|\(I|\$@|\$B|&@\x1b\$B|\$\(D|\$\(O|\$\(Q|\$\(P))")
_MODES = {b"\x1b(B": "ascii", b"\x1b(J": "ascii", b"\x1b(I": "kana", b"\x1b$@": "jis", b"\x1b$B": "jis",
          b"\x1b&@\x1b$B": "jis", b"\x1b$(D": "jisx0212", b"\x1b$(O": "jisx0213", b"\x1b$(Q": "jisx0213",
          b"\x1b$(P": "jisx0213-2"}


# Japanese mail is still ISO-2022-JP (MALLS-style public knowledge), and the malls' mailers write it as Windows
# does (CP50220), so NEC and IBM extension characters appear inside ESC $ B.
def _jis_pair(first: int, second: int) -> str:
    """One JIS X 0208 character, read the way Windows does (CP50220): NEC row 13 (①, ㈱) and the NEC-selected
    IBM extensions (髙) sit inside ESC $ B, and 0x2141 is ～ U+FF5E; what CP932 lacks is tried as JIS X 0213."""
    row_odd = first % 2 == 1
    lead = (first + 1) // 2 + (0x70 if first <= 0x5E else 0xB0)
    trail = second + (0x1F if second < 0x60 else 0x20) if row_odd else second + 0x7E
    try:
        return bytes((lead, trail)).decode("cp932")
    except UnicodeDecodeError:
        pass
    try:
        return bytes((first | 0x80, second | 0x80)).decode("euc_jis_2004")
    except UnicodeDecodeError:
        return "\ufffd"


def _decode_iso2022jp(data: bytes) -> str:
    """ISO-2022-JP with the extensions real Japanese mail carries; Python's own codec stops at ① or 髙."""
    out: list[str] = []
    mode = "ascii"
    for chunk in _ESCAPE.split(data):
        if not chunk:
            continue
        if chunk in _MODES:
            mode = _MODES[chunk]
            continue
        if mode == "ascii":
            out.append(_decode_unlabelled(chunk))
        elif mode == "kana":
            out.append("".join(chr(0xFF61 + b - 0x21) if 0x21 <= b <= 0x5F else chr(b) for b in chunk))
        else:
            i = 0
            while i < len(chunk):
                b = chunk[i]
                if b < 0x21 or b > 0x7E or i + 1 >= len(chunk):
                    out.append(chr(b) if b < 0x80 else "\ufffd")  # a line break inside a double-byte run
                    i += 1
                    continue
                pair = chunk[i:i + 2]
                if mode == "jis":
                    out.append(_jis_pair(pair[0], pair[1]))
                elif mode == "jisx0212":
                    out.append((b"\x8f" + bytes(c | 0x80 for c in pair)).decode("euc_jp", "replace"))
                elif mode == "jisx0213":
                    out.append(bytes(c | 0x80 for c in pair).decode("euc_jis_2004", "replace"))
                else:
                    out.append((b"\x8f" + bytes(c | 0x80 for c in pair)).decode("euc_jis_2004", "replace"))
                i += 2
    return "".join(out)


def _decode_unlabelled(data: bytes) -> str:
    if b"\x1b$" in data or b"\x1b(" in data:
        return _decode_iso2022jp(data)
    for codec in _UNLABELLED:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("cp932", "replace")


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in the named charset, with the Japanese mail quirks above; never raises."""
    label = (charset or "").strip().strip('"').lower()
    if label in _ISO2022 or (b"\x1b$" in data and label in ("", "us-ascii", "ascii")):
        return _decode_iso2022jp(data)
    codecs = _CODECS.get(label)
    if codecs is None:
        try:
            return data.decode(label) if label else _decode_unlabelled(data)
        except (LookupError, UnicodeDecodeError):
            return _decode_unlabelled(data)
    for codec in codecs:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode(codecs[0], "replace")


# --- Headers ---------------------------------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _word_bytes(encoding: str, text: str) -> bytes:
    if encoding in "bB":
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text)
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
        try:
            return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
        except (binascii.Error, ValueError):
            return b""
    try:
        raw = text.replace("_", " ").encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # already-decoded text inside a word quoted in a forwarded body
        raw = text.replace("_", " ").encode("utf-8")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes((int(m.group(1), 16),)), raw)


def _plain_text(text: str) -> str:
    """Header text outside encoded words: raw 8-bit bytes (kept as surrogates by the parser) are decoded,
    text that is already Unicode (a header quoted in a forwarded body) is kept."""
    try:
        return _decode_unlabelled(text.encode("ascii", "surrogateescape"))
    except UnicodeEncodeError:
        return text


def decode_header_text(value: str | None) -> str:
    """An RFC 2047 header value as text, tolerant of what mail clients really send: words split inside a
    multibyte character (adjacent words of one charset are joined before decoding), missing base64 padding,
    raw 8-bit UTF-8 or Shift_JIS, and raw ISO-2022-JP escapes."""
    if not value:
        return ""
    value = re.sub(r"\r?\n[ \t]", " ", value).replace("\r", "").replace("\n", "")
    pieces: list[tuple[str | None, bytes | str]] = []  # (charset, bytes) for words; (None, text) between
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position:match.start()]
        if between and not (between.isspace() and pieces and pieces[-1][0] is not None):
            pieces.append((None, between))
        charset = match.group(1).split("*", 1)[0].lower()
        data = _word_bytes(match.group(2), match.group(3))
        previous = pieces[-1] if pieces else None
        if previous is not None and previous[0] == charset and isinstance(previous[1], bytes):
            pieces[-1] = (charset, previous[1] + data)
        else:
            pieces.append((charset, data))
        position = match.end()
    if value[position:]:
        pieces.append((None, value[position:]))
    return "".join(decode_bytes(data, charset) if isinstance(data, bytes) and charset else _plain_text(str(data))
                   for charset, data in pieces).strip()


def _raw_headers(message: Message, name: str) -> list[str]:
    # raw_items keeps the stored text; get() would wrap raw 8-bit values in Header objects.
    return [str(value) for key, value in message.raw_items() if key.lower() == name.lower()]


def _raw_header(message: Message, name: str) -> str | None:
    values = _raw_headers(message, name)
    return values[0] if values else None


_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def _address(value: str | None) -> str:
    """The bare address of a From value, lower-case; also reads Outlook's 'Name [mailto:a@b]'."""
    if not value:
        return ""
    unfolded = re.sub(r"\r?\n[ \t]", " ", value)
    address = parseaddr(unfolded)[1]
    if "@" not in address:
        found = _ADDRESS.search(unfolded)
        address = found.group(0) if found else ""
    return address.strip().lower()


def _addresses(message: Message, *names: str) -> tuple[str, ...]:
    seen: list[str] = []
    for name in names:
        for _, address in getaddresses(_raw_headers(message, name)):
            address = address.strip().lower()
            if "@" in address and address not in seen:
                seen.append(address)
    return tuple(seen)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _header_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return _utc(parsedate_to_datetime(value.strip()))
    except (TypeError, ValueError, IndexError):
        return loose_date(value)


_MONTHS = {name: number for number, names in enumerate(
    (("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"),
     ("nov", "november"), ("dec", "december")), start=1) for name in names}
_JA_DATE = re.compile(r"(\d{4})\s*[年/.-]\s*(\d{1,2})\s*[月/.-]\s*(\d{1,2})\s*日?\s*(?:[(（][^)）]*[)）])?\s*"
                      r"(午前|午後)?\s*(\d{1,2})\s*[:時]\s*(\d{2})(?:\s*[:分]\s*(\d{2}))?")
_EN_DATE = re.compile(r"([A-Za-z]{3,9})\.?\s+(\d{1,2}),?\s+(\d{4})(?:,?\s*at)?,?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
                      r"\s*([AaPp]\.?[Mm]\.?)?")


def loose_date(value: str) -> datetime | None:
    """A date as mail clients print it in a quoted header block ('2025年3月14日(金) 10:24',
    'Fri, Mar 14, 2025 at 10:24 AM', 'Friday, March 14, 2025 10:24 AM', RFC 2822); without an offset the
    time is taken as Japan time, the forwarding shop's clock. Naive UTC, or None."""
    text = value.strip().translate(str.maketrans("０１２３４５６７８９：", "0123456789:"))
    try:
        parsed = parsedate_to_datetime(text)
        if parsed.tzinfo is not None:
            return _utc(parsed)
    except (TypeError, ValueError, IndexError):
        pass
    match = _JA_DATE.search(text)
    if match:
        year, month, day, half, hour, minute, second = match.groups()
        hour_value = int(hour) % 12 + 12 if half == "午後" else (int(hour) % 12 if half == "午前" else int(hour))
        return _safe_jst(int(year), int(month), int(day), hour_value, int(minute), int(second or 0))
    match = _EN_DATE.search(text)
    if match and match.group(1).lower() in _MONTHS:
        month_name, day, year, hour, minute, second, half = match.groups()
        hour_value = int(hour)
        if half:
            hour_value = hour_value % 12 + (12 if half[0] in "Pp" else 0)
        return _safe_jst(int(year), _MONTHS[month_name.lower()], int(day), hour_value, int(minute),
                         int(second or 0))
    return None


def _safe_jst(*parts: int) -> datetime | None:
    try:
        return jst(*parts)
    except ValueError:
        return None


# --- Bodies ----------------------------------------------------------------------------------------------

class _HTMLText(HTMLParser):
    """HTML as text, one line per block: order mails lay items out in <br>, <p>, <div> and table rows."""

    BLOCKS = frozenset({"br", "p", "div", "tr", "td", "th", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4",
                        "h5", "h6", "blockquote", "section", "article", "header", "footer", "hr", "dt", "dd", "pre",
                        "center"})
    HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
            if tag == "pre":
                self.pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")
            if tag == "pre" and self.pre:
                self.pre -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data if self.pre else re.sub(r"[ \t\r\n\f]+", " ", data))


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    lines = [re.sub(r"[ \t]+", " ", line.replace("\xa0", " ")).strip() for line in "".join(parser.parts).split("\n")]
    return _squeeze_blank_lines("\n".join(lines))


def _squeeze_blank_lines(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def normalise_text(text: str) -> str:
    """LF line ends, no trailing spaces, no byte-order mark; full-width characters stay as they are."""
    text = text.replace("\ufeff", "").replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n") + "\n"


def _is_attachment(part: Message) -> bool:
    return (part.get("Content-Disposition") or "").strip().lower().startswith("attachment")


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_param("charset")
    if isinstance(charset, tuple):  # RFC 2231 form
        charset = charset[2]
    return decode_bytes(payload, charset if isinstance(charset, str) else None)


def _body_text(message: Message) -> str:
    """The first text/plain part, else the first text/html part as text (multipart/alternative: plain)."""
    plain: str | None = None
    html: str | None = None
    for part in message.walk():
        if part.is_multipart() or _is_attachment(part):
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None:
            plain = _part_text(part)
        elif kind == "text/html" and html is None:
            html = _part_text(part)
    if plain is not None and plain.strip():
        return normalise_text(plain)
    if html is not None:
        return normalise_text(html_to_text(html))
    return normalise_text(plain or "")


def _attached_message(message: Message) -> Message | None:
    """The original of a copy forwarded as an attachment (message/rfc822)."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
    return None


# --- Forwarded copies ------------------------------------------------------------------------------------

FORWARD_PREFIX = re.compile(r"^\s*(?:(?:fwd?|fw|tr|wg|転送|ﾃﾝｿｳ)\s*[:：]\s*|\[fwd?\s*[:：]\s*)+", re.IGNORECASE)
_FORWARD_MARKER = re.compile(
    r"^(?:>\s*)*(?:-{2,}\s*(?:forwarded message|original message|転送されたメッセージ|"
    r"転送メッセージ|元のメッセージ)\s*-{2,}|begin forwarded message\s*:|_{10,})\s*$", re.IGNORECASE)
_QUOTED_HEADER = re.compile(
    r"^(?:>\s*)*(from|差出人|送信者|date|sent|日付|送信日時|日時|subject|件名|to|宛先|cc)\s*[:：]\s?(.*)$",
    re.IGNORECASE)
_HEADER_ROLES = {"from": "from", "差出人": "from", "送信者": "from", "date": "date", "sent": "date",
                 "日付": "date", "送信日時": "date", "日時": "date", "subject": "subject", "件名": "subject",
                 "to": "to", "宛先": "to", "cc": "to"}


def _quoted_original(text: str) -> tuple[dict[str, str], str] | None:
    """The header block a mail client quotes above a forwarded mail, and the text below it.

    Gmail ('---------- Forwarded message ---------', '転送されたメッセージ'), Outlook ('-----Original Message-----',
    差出人/送信日時/件名), Thunderbird and Apple Mail, with or without '> ' quoting: a run of header lines, in any
    order, that names both the sender and the subject. The marker line is not required."""
    lines = text.split("\n")
    start = next((index + 1 for index, line in enumerate(lines) if _FORWARD_MARKER.match(line.strip())), 0)
    index = start
    while index < len(lines):
        headers: dict[str, str] = {}
        end = index
        while end < len(lines) and (match := _QUOTED_HEADER.match(lines[end].strip())):
            headers.setdefault(_HEADER_ROLES[match.group(1).lower()], match.group(2).strip())
            end += 1
        if "from" in headers and "subject" in headers:
            return headers, _unquote("\n".join(lines[end:]))
        index = max(end, index + 1)
    return None


def _unquote(text: str) -> str:
    """Remove one level of '> ' quoting when the forwarded text is quoted throughout."""
    lines = text.split("\n")
    filled = [line for line in lines if line.strip()]
    if filled and sum(line.lstrip().startswith(">") for line in filled) >= 0.8 * len(filled):
        lines = [re.sub(r"^\s*> ?", "", line) for line in lines]
    return normalise_text("\n".join(lines))


# --- The envelope ----------------------------------------------------------------------------------------

def read_mail(raw: bytes) -> MailEnvelope:
    """A raw RFC 822 mail as a MailEnvelope; for a hand-forwarded copy, the original's From, Subject and Date
    as quoted in the body (or as attached), since the forwarder's own headers say nothing about the mall."""
    message = email.message_from_bytes(raw, policy=compat32)
    recipients = _addresses(message, "To", "Cc", "Delivered-To", "X-Original-To")
    message_id = (_raw_header(message, "Message-ID") or "").strip() or None
    subject = decode_header_text(_raw_header(message, "Subject"))
    sender = _address(_raw_header(message, "From"))
    date = _header_date(_raw_header(message, "Date"))
    forwarded = bool(FORWARD_PREFIX.match(subject))
    if forwarded:
        attached = _attached_message(message)
        if attached is not None:
            return MailEnvelope(
                sender=_address(_raw_header(attached, "From")),
                recipients=recipients,
                subject=decode_header_text(_raw_header(attached, "Subject")),
                message_id=message_id,
                date=_header_date(_raw_header(attached, "Date")) or date,
                text=_body_text(attached),
                forwarded=True,
            )
    text = _body_text(message)
    if forwarded:
        subject = FORWARD_PREFIX.sub("", subject).strip()
        quoted = _quoted_original(text)
        if quoted is not None:
            headers, text = quoted
            sender = _address(headers.get("from")) or sender
            subject = decode_header_text(headers.get("subject")) or subject
            date = (loose_date(headers["date"]) if headers.get("date") else None) or date
    return MailEnvelope(sender=sender, recipients=recipients, subject=subject, message_id=message_id, date=date,
                        text=text, forwarded=forwarded)

"""Building the MIME message for an outbox row.

The message is multipart/alternative (plain text + HTML, utf-8, base64), wrapped in
multipart/mixed when the row has an attachment; it carries the row's stable Message-ID, and
headers with Chinese in them are RFC 2047 encoded. It is 7-bit clean, so any server takes it.

:func:`mime_bytes` writes the wire form directly (tens of µs; the sender uses it for every
message), and :func:`build_mime` parses those same bytes into an
:class:`email.message.EmailMessage` (policy SMTP) for anyone who wants the object; there is
one way a message is built.
"""

import base64
import re
import uuid
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP
from email.utils import format_datetime, formataddr, getaddresses
from functools import lru_cache
from typing import Protocol
from urllib.parse import quote

from models.domain import SHANGHAI

MAX_LINE = 78
_CHUNK_BYTES = 42  # utf-8 bytes per encoded word: "=?utf-8?b?" + 56 base64 chars + "?=" = 68
_SPECIAL_ASCII = frozenset("\r\n\t\x00")
_ATTR_CHARS = "!#$&+^`|"  # RFC 2231 attribute-chars that quote() would escape
_PERCENT_TOKEN = re.compile(r"%[0-9A-Fa-f]{2}|[^%]")


class _CachingHeaderRegistry(HeaderRegistry):
    """The stdlib registry builds a new header class on every lookup (~10 µs each); the
    classes are stateless, so build each once."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(key)
        return cls


# email.policy.SMTP (CRLF, RFC 2047 headers), only faster at looking headers up.
SMTP_POLICY = SMTP.clone(header_factory=_CachingHeaderRegistry())


class MailContent(Protocol):
    """What a message is built from: an ``OutboxMessageBase`` or a Core row of the outbox."""

    @property
    def to_addr(self) -> str: ...
    @property
    def cc_addr(self) -> str | None: ...
    @property
    def subject(self) -> str: ...
    @property
    def text_body(self) -> str: ...
    @property
    def html_body(self) -> str: ...
    @property
    def attachment_name(self) -> str | None: ...
    @property
    def attachment_type(self) -> str | None: ...
    @property
    def attachment(self) -> bytes | None: ...
    @property
    def message_id(self) -> str: ...
    @property
    def queued_at(self) -> datetime: ...


def encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 base64 encoded words of at most 68 characters each.

    Characters are never split; whitespace between adjacent encoded words is ignored by
    readers, so the words may be folded onto separate lines.
    """
    data = text.encode("utf-8")
    words: list[str] = []
    start = 0
    while True:
        end = min(start + _CHUNK_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # inside a character: back off
            end -= 1
        words.append(_word(data[start:end]))
        if end >= len(data):
            return words
        start = end


def _word(data: bytes) -> str:
    return f"=?utf-8?b?{base64.b64encode(data).decode('ascii')}?="


def _plain_is_safe(text: str) -> bool:
    return text.isascii() and "=?" not in text and not any(c in _SPECIAL_ASCII for c in text)


def _fold(name: str, tokens: list[str]) -> str:
    """``Name: tokens`` with a fold (CRLF + space) wherever a line would pass 78 characters."""
    line = f"{name}:"
    lines: list[str] = []
    for token in tokens:
        if len(line) + 1 + len(token) > MAX_LINE and line.strip() != f"{name}:":
            lines.append(line)
            line = ""
        line = f"{line} {token}"
    lines.append(line)
    return "\r\n".join(lines)


def unstructured_header(name: str, value: str) -> str:
    """An unstructured header (Subject): as is if short plain ASCII, else encoded words."""
    if _plain_is_safe(value) and len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}"
    if _plain_is_safe(value):
        return _fold(name, value.split(" "))
    return _fold(name, encoded_words(value))


def _one_line(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} must not contain CR or LF")
    return value


@lru_cache(maxsize=1024)
def parse_address(value: str) -> tuple[str, str]:
    """(display name, addr-spec) of a header value holding exactly one address."""
    pairs = getaddresses([_one_line("address", value)])
    if len(pairs) != 1 or not pairs[0][1]:
        raise ValueError("expected exactly one address")
    return pairs[0]


@lru_cache(maxsize=256)
def address_header(name: str, value: str) -> str:
    """``To``/``Cc``/``From`` for one address, the display name RFC 2047 encoded if needed."""
    display, addr = parse_address(value)
    if not display:
        return f"{name}: {addr}"
    if display.isascii() and "=?" not in display:
        return _fold(name, formataddr((display, addr)).rsplit(" ", 1))
    return _fold(name, [*encoded_words(display), f"<{addr}>"])


def _base64_lines(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _text_part(subtype: str, text: str) -> bytes:
    canonical = b"\r\n".join(text.encode("utf-8").splitlines()) + b"\r\n"
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii") + _base64_lines(canonical)


def filename_params(name: str) -> list[str]:
    """``filename`` parameter(s) for Content-Disposition: quoted if short plain ASCII, else
    RFC 2231 (utf-8, percent-encoded), split into numbered continuations if long."""
    if _plain_is_safe(name) and '"' not in name and "\\" not in name and len(name) <= 60:
        return [f'filename="{name}"']
    encoded = quote(name.encode("utf-8"), safe=_ATTR_CHARS)
    if len(encoded) <= 60:
        return [f"filename*=utf-8''{encoded}"]
    segments: list[str] = [""]
    for token in _PERCENT_TOKEN.findall(encoded):
        if len(segments[-1]) + len(token) > 54:
            segments.append("")
        segments[-1] += token
    first = f"filename*0*=utf-8''{segments[0]}"
    return [first, *(f"filename*{i}*={part}" for i, part in enumerate(segments[1:], start=1))]


def _attachment_part(name: str, content_type: str, data: bytes) -> bytes:
    disposition = ";\r\n ".join(["attachment", *filename_params(name)])
    return (
        f"Content-Type: {content_type}\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: {disposition}\r\n\r\n"
    ).encode("ascii") + _base64_lines(data)


def _multipart(subtype: str, parts: list[bytes]) -> tuple[str, bytes]:
    boundary = f"=_{uuid.uuid4().hex}"  # "=_" never occurs in base64 or our part headers
    delimiter = f"--{boundary}\r\n".encode("ascii")
    body = b"".join(delimiter + part for part in parts) + f"--{boundary}--\r\n".encode("ascii")
    return f'multipart/{subtype};\r\n boundary="{boundary}"', body


@lru_cache(maxsize=16)
def _date_header(timestamp: int) -> str:
    return f"Date: {format_datetime(datetime.fromtimestamp(timestamp, SHANGHAI))}"


def mime_bytes(row: MailContent, mail_from: str, *, date: datetime | None = None) -> bytes:
    """The message for ``row`` as sent: from ``mail_from``, dated ``date`` (default: when
    queued), shown in Beijing time."""
    alternative_type, alternative = _multipart(
        "alternative", [_text_part("plain", row.text_body), _text_part("html", row.html_body)]
    )
    if row.attachment is not None:
        content_type, body = _multipart(
            "mixed",
            [
                f"Content-Type: {alternative_type}\r\n\r\n".encode("ascii") + alternative,
                _attachment_part(
                    row.attachment_name or "attachment",
                    _one_line("attachment type", row.attachment_type or "application/octet-stream"),
                    row.attachment,
                ),
            ],
        )
    else:
        content_type, body = alternative_type, alternative
    headers = [
        address_header("From", mail_from),
        address_header("To", row.to_addr),
    ]
    if row.cc_addr:
        headers.append(address_header("Cc", row.cc_addr))
    headers += [
        unstructured_header("Subject", row.subject),
        _date_header(int((date or row.queued_at).timestamp())),
        f"Message-ID: {_one_line('Message-ID', row.message_id)}",
        "MIME-Version: 1.0",
        f"Content-Type: {content_type}",
    ]
    return ("\r\n".join(headers) + "\r\n\r\n").encode("ascii") + body


def envelope_recipients(row: MailContent) -> list[str]:
    """The addresses to give the server in RCPT TO: the To and Cc addr-specs."""
    to = parse_address(row.to_addr)[1]
    return [to, parse_address(row.cc_addr)[1]] if row.cc_addr else [to]


def envelope_sender(mail_from: str) -> str:
    """The address to give the server in MAIL FROM."""
    return parse_address(mail_from)[1]


def build_mime(row: MailContent, mail_from: str, *, date: datetime | None = None) -> EmailMessage:
    """The message for ``row`` (see :func:`mime_bytes`) as an ``EmailMessage`` (policy SMTP)."""
    data = mime_bytes(row, mail_from, date=date)
    return BytesParser(policy=SMTP_POLICY).parsebytes(data)

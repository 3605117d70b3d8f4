"""Rendering messages from jinja2 templates: a subject, a plain-text and an HTML body.

A message template ``name`` is three files in ``notifications/templates``:
``name.subject.txt``, ``name.txt`` and ``name.html``. HTML is autoescaped, plain text is
not, and an undefined variable is an error rather than an empty string.
"""

from collections.abc import Mapping
from functools import cache
from typing import NamedTuple

import jinja2


class RenderedMessage(NamedTuple):
    subject: str
    text: str
    html: str


@cache
def make_environment() -> jinja2.Environment:
    """The (cached) environment: package templates, autoescape for .html, strict undefined."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("notifications", "templates"),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates ship with the package: no stat() per render
    )


def one_line(text: str) -> str:
    """``text`` as a single header-safe line: stripped, every line break replaced by a space."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def render_message(template: str, context: Mapping[str, object]) -> RenderedMessage:
    """Render ``template``'s subject, text and HTML with ``context``."""
    env = make_environment()
    values = dict(context)
    subject = env.get_template(f"{template}.subject.txt").render(values)
    text = env.get_template(f"{template}.txt").render(values)
    html = env.get_template(f"{template}.html").render(values)
    return RenderedMessage(subject=one_line(subject), text=text, html=html)

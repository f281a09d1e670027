"""Templates to messages: compile once, render per person, inline the CSS, write the text part.

Email templates run in a Django template Engine of their own, not the site's: no loaders (no
{% include %} or {% extends %} of site files), no {% load %} libraries, autoescape on for the
HTML and off for the subject and the text. The person is a read-only mapping of plain values
(email, first_name, last_name, user_id, properties as the sender spelled them), never the
model, so a template cannot call its methods (`{{ contact.delete }}` is just empty).

Speed: a template is compiled once per process and version (cached by id and updated_at).
When a template has no written text part, the HTML *source* is turned into a text template
once (html2text), as long as that keeps every template tag as it was; otherwise each
rendered HTML is converted. CSS is inlined on the rendered HTML by css-inline (Rust, a few
tens of microseconds a message), only for templates that have a <style>.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import css_inline
import html2text
from django.conf import settings
from django.template import Context, Engine, TemplateSyntaxError
from django.utils.dateparse import parse_datetime

LAYOUT = Path(settings.BASE_DIR) / "templates" / "email" / "layout.html"
CONTENT_MARK = "<!--content-->"
TAG_RE = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)
FULL_DOCUMENT_RE = re.compile(r"<html[\s>]|<body[\s>]", re.I)
BODY_END_RE = re.compile(r"</body\s*>", re.I)
CACHE_SIZE = 256

# debug=True keeps each node's position, so an error names its line; it costs nothing per render.
_html_engine = Engine(debug=True, autoescape=True, loaders=[], libraries={})
_text_engine = Engine(debug=True, autoescape=False, loaders=[], libraries={})
_inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)

UNSUBSCRIBE_TEXT = "{% if unsubscribe_url %}\n\nUnsubscribe: {{ unsubscribe_url }}{% endif %}"
UNSUBSCRIBE_HTML = (
    '{% if unsubscribe_url %}<p style="font-size:12px;color:#6b7280;text-align:center;margin:24px 0 0">'
    '<a href="{{ unsubscribe_url }}" style="color:#6b7280">Unsubscribe</a></p>{% endif %}'
)


class TemplateError(Exception):
    """A template that does not compile or render; `str()` names the part and the line."""

    def __init__(self, part: str, message: str, line: int | None = None) -> None:
        self.part, self.line, self.message = part, line, message
        where = f"{part} line {line}" if line else part
        super().__init__(f"{where}: {message}")


def _compile(engine: Engine, source: str, part: str):
    try:
        return engine.from_string(source)
    except TemplateSyntaxError as error:
        raise TemplateError(part, _first_line(error), _line_of(error)) from error


def _line_of(error: Exception) -> int | None:
    debug = getattr(error, "template_debug", None)
    return debug.get("line") if debug else None


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def template_errors(*, subject: str = "", html: str = "", text: str = "") -> dict[str, str]:
    """{part: "line N: message"} for each part that does not compile; empty when all do."""
    errors = {}
    for part, source, engine in (
        ("subject", subject, _text_engine),
        ("html", html, _html_engine),
        ("text", text, _text_engine),
    ):
        try:
            _compile(engine, source or "", part)
        except TemplateError as error:
            errors[part] = f"line {error.line}: {error.message}" if error.line else error.message
    return errors


# --- compiled templates ----------------------------------------------------------------------
@dataclass
class Compiled:
    """One template version, ready to render many times."""

    subject: Any
    html: Any
    text: Any  # a text template (written, or made from the HTML source), or None: convert each HTML
    has_css: bool  # CSS left to inline on each rendered message (see _inline_source)
    html_offset: int = 0  # lines of the layout before the staff's HTML, so an error names their line
    html_plain: Any = None  # the HTML before its CSS was inlined: re-rendered to name an error's line


_cache: OrderedDict[tuple[int, Any], Compiled] = OrderedDict()
_cache_lock = threading.Lock()


def compiled(template) -> Compiled:
    """The template compiled, from the cache when this version was seen before."""
    key = (template.pk, template.updated_at, template.subject, template.html, template.text, template.logo_url)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    result = compile_template(subject=template.subject, html=template.html, text=template.text)
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def compile_template(*, subject: str, html: str, text: str) -> Compiled:
    # Each part alone first, so an error's line is the staff's own line, not the layout's.
    subject_t = _compile(_text_engine, subject, "subject")
    _compile(_html_engine, html, "html")
    text_source = text if text.strip() else _text_from_html_source(html)
    if text.strip():
        _compile(_text_engine, text, "text")
    html_source = _with_layout(html)
    html_t = html_plain = _compile(_html_engine, html_source, "html")
    offset = html_source.count("\n", 0, html_source.find(html)) if html and html in html_source else 0
    has_css = _has_css(html_source)
    if has_css:
        inlined = _inline_source(html_source)
        if inlined is not None:
            html_t, has_css = _compile(_html_engine, inlined, "html"), False
    text_t = None
    if text_source is not None:
        if "unsubscribe_url" not in text_source:
            text_source = text_source.rstrip() + UNSUBSCRIBE_TEXT
        text_t = _compile(_text_engine, text_source, "text")
    return Compiled(
        subject=subject_t, html=html_t, text=text_t, has_css=has_css, html_offset=offset, html_plain=html_plain
    )


# Where a template tag would change which CSS applies: in a class, id or style attribute, or in
# the stylesheet itself. Such templates are inlined per message.
CSS_DEPENDS = re.compile(
    r"""\b(?:class|id|style)\s*=\s*(?:"[^"]*(?:{{|{%)|'[^']*(?:{{|{%))|<style[^>]*>(?:(?!</style>).)*(?:{{|{%)""",
    re.I | re.S,
)


def _inline_source(source: str) -> str | None:
    """The template with its CSS inlined once, for every person; None when that cannot be done
    safely (then each rendered message is inlined). Template tags are swapped for plain-word
    placeholders while css-inline parses and rewrites the HTML, then put back; if the parser
    moved or dropped any of them (text inside a <table> is moved out of it, for one), the
    result is not used."""
    if CSS_DEPENDS.search(source):
        return None
    tags = TAG_RE.findall(source)
    nonce = secrets.token_hex(4)
    marks = iter(range(len(tags)))
    protected = TAG_RE.sub(lambda _match: f"sy{nonce}t{next(marks)}e", source)
    try:
        inlined = _inliner.inline(protected)
    except ValueError:
        return None
    restored = re.sub(rf"sy{nonce}t(\d+)e", lambda match: tags[int(match.group(1))], inlined)
    if TAG_RE.findall(restored) != tags or f"sy{nonce}t" in restored:
        return None
    return restored


def _has_css(source: str) -> bool:
    lowered = source.lower()
    return "<style" in lowered or 'rel="stylesheet"' in lowered


def _section(source: str, name: str, keep: bool) -> str:
    """Keep or drop the layout's `<!--name-->…<!--/name-->` part."""
    start, end = f"<!--{name}-->", f"<!--/{name}-->"
    before, _, rest = source.partition(start)
    inside, _, after = rest.partition(end)
    return before + (inside if keep else "") + after


def _with_layout(html: str) -> str:
    """A fragment goes into the email layout (logo, width, footer); a whole document keeps its
    own shape and only gets the unsubscribe link before </body> when it has none. A template
    that places {{ logo_url }} or {{ unsubscribe_url }} itself gets no second one."""
    if FULL_DOCUMENT_RE.search(html):
        if "unsubscribe_url" in html:
            return html
        parts = BODY_END_RE.split(html, maxsplit=1)
        return parts[0] + UNSUBSCRIBE_HTML + "</body>" + parts[1] if len(parts) == 2 else html + UNSUBSCRIBE_HTML
    layout = LAYOUT.read_text()
    layout = _section(layout, "logo", "logo_url" not in html)
    layout = _section(layout, "footer", "unsubscribe_url" not in html)
    return layout.replace(CONTENT_MARK, html, 1)


def _html2text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.unicode_snob = True
    return converter.handle(html).strip()


def _text_from_html_source(html: str) -> str | None:
    """The HTML source as a text template, or None when converting it would change a tag
    (then each rendered HTML is converted instead). A template that marks values safe would
    put their HTML into the text, so it takes the slow path too."""
    tags = TAG_RE.findall(html)
    if any("safe" in tag or "autoescape" in tag for tag in tags):
        return None
    text = _html2text(html)
    if TAG_RE.findall(text) != tags:
        return None
    try:
        _compile(_text_engine, text, "text")
    except TemplateError:
        return None
    return text


# --- what a template sees ------------------------------------------------------------------------
def frozen(value: Any) -> Any:
    """JSON-like data, read-only: dicts become mapping proxies, lists tuples."""
    if isinstance(value, dict):
        return MappingProxyType({str(k): frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(frozen(v) for v in value)
    return value


def contact_data(contact) -> MappingProxyType:
    """The person as templates see them: plain values, never the model."""
    if contact is None:
        return MappingProxyType({})
    return MappingProxyType(
        {
            "id": contact.pk,
            "email": contact.email or "",
            "first_name": contact.first_name or "",
            "last_name": contact.last_name or "",
            "user_id": contact.user_id or "",
            "properties": frozen(contact.properties or {}),
        }
    )


def event_data(context: dict | None) -> MappingProxyType:
    data = dict(context or {})
    stamp = data.get("timestamp")
    if isinstance(stamp, str):
        parsed = parse_datetime(stamp)
        if parsed is not None:
            data["timestamp"] = parsed
    data.setdefault("name", "")
    data.setdefault("properties", {})
    return frozen(data)


@dataclass
class Rendered:
    subject: str
    html: str
    text: str


def render(
    template_compiled: Compiled,
    *,
    contact: MappingProxyType,
    event: MappingProxyType,
    unsubscribe_url: str = "",
    logo_url: str = "",
) -> Rendered:
    """One message's subject, HTML (CSS inlined) and text. TemplateError names what failed."""
    values = {"contact": contact, "event": event, "unsubscribe_url": unsubscribe_url, "logo_url": logo_url}
    subject = " ".join(_render(template_compiled.subject, values, "subject").split())
    try:
        html = _render(template_compiled.html, values, "html", template_compiled.html_offset)
    except TemplateError:
        if template_compiled.html_plain is None or template_compiled.html_plain is template_compiled.html:
            raise
        # The staff's own line: the inlined template's lines are css-inline's.
        _render(template_compiled.html_plain, values, "html", template_compiled.html_offset)
        raise
    if template_compiled.has_css:
        try:
            html = _inliner.inline(html)
        except ValueError as error:
            raise TemplateError("html", f"CSS could not be inlined: {error}") from error
    if template_compiled.text is not None:
        text = _render(template_compiled.text, values, "text").strip()
    else:
        text = _html2text(html)
        if unsubscribe_url and unsubscribe_url not in text:
            text += f"\n\nUnsubscribe: {unsubscribe_url}"
    return Rendered(subject=subject, html=html, text=text + "\n")


def _render(template, values: dict, part: str, offset: int = 0) -> str:
    try:
        return template.render(Context(values, autoescape=template.engine.autoescape))
    except Exception as error:  # noqa: BLE001 - a filter or tag failing on this person's data
        line = _line_of(error)
        if line is not None and line > offset:
            line -= offset
        raise TemplateError(part, _first_line(error), line) from error

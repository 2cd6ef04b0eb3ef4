"""Pages from the Jinja2 templates in ``publish/templates/``.

One environment per language, all built here alike: templates read from the
package (so an installed copy finds them), autoescape on for ``.html``, an
undefined name is an error (:class:`jinja2.StrictUndefined`), block tags leave no
blank lines (``trim_blocks``, ``lstrip_blocks``). Its filters format figures through
Babel (:mod:`publish.formats`) for the environment's locale; the i18n extension is
installed with null translations, so ``{% trans %}`` and ``ngettext`` work in
English today and a gettext catalogue is all another language needs.

Python builds plain data (dicts, lists, strings, numbers) and calls :func:`render`;
the markup lives in the templates.
"""

from __future__ import annotations

from functools import cache, partial
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from publish import formats

TEMPLATES = "templates"
#: The shared style sheet; the hand-built profile and quality pages still paste it in
#: (until they are templates too).
SITE_CSS = files("publish").joinpath(TEMPLATES, "site.css").read_text(encoding="utf-8")


def _data_number(value: object) -> str:
    """A figure for a ``data-*`` attribute (a script sorts by it): the float's repr, or
    empty when it is missing."""
    parsed = formats.number(value)
    return "" if parsed is None else repr(parsed)


@cache
def environment(locale: str = "en") -> Environment:
    """The template environment whose filters format for ``locale`` (a CLDR identifier)."""
    env = Environment(
        loader=PackageLoader("publish", TEMPLATES),
        autoescape=select_autoescape(("html",)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        count=partial(formats.format_count, locale=locale),
        usd=partial(formats.format_usd, locale=locale),
        share=partial(formats.format_share, locale=locale),
        plain=partial(formats.format_plain, locale=locale),
        bytes=partial(formats.format_bytes, locale=locale),
        decimal=lambda value, places: formats.format_decimal_places(value, places, locale),
        date=partial(formats.format_date, locale=locale),
        timestamp=partial(formats.format_timestamp, locale=locale),
        short_hash=formats.short_hash,
        number=formats.number,
        text=lambda value: "" if value is None else str(value),
        data_number=_data_number,
    )
    env.globals["locale"] = locale
    return env


def render(template: str, /, locale: str = "en", **data: Any) -> str:
    """``template`` rendered with ``data`` for ``locale``."""
    return environment(locale).get_template(template).render(**data)

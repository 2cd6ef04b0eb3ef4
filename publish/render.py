"""Pages from the Jinja2 templates in ``publish/templates/``.

One environment per language, all built here alike: templates read from the
package (so an installed copy finds them), autoescape on for ``.html``, an
undefined name is an error (:class:`jinja2.StrictUndefined`), block tags leave no
blank lines (``trim_blocks``, ``lstrip_blocks``). Its filters format figures through
Babel (:mod:`publish.formats`) for the environment's locale.

Texts are English gettext messages (``{{ _("Country profile") }}``, newstyle:
``_("%(name)s: ...", name=...)``). English needs no catalogue; any other language
is ``publish/locale/{lang}/LC_MESSAGES/messages.po``, compiled here when first used
(``babel.cfg`` at the repository root says where ``pybabel extract`` finds the
messages). Python builds plain data (dicts, lists, strings, numbers) and calls
:func:`render`; the markup lives in the templates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from functools import cache, partial
from importlib.resources import files
from importlib.resources.abc import Traversable
from io import BytesIO
from typing import Any

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from publish import formats

TEMPLATES = "templates"
DEFAULT_LOCALE = "en"
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")
#: Where the catalogues are: ``{lang}/LC_MESSAGES/messages.po`` under it.
LOCALE_ROOT: Traversable = files("publish").joinpath("locale")


def catalogue(locale: str) -> Traversable:
    return LOCALE_ROOT.joinpath(locale, "LC_MESSAGES", "messages.po")


def available_locales() -> tuple[str, ...]:
    """English and every language with a catalogue, English first."""
    found = sorted(
        item.name
        for item in LOCALE_ROOT.iterdir()
        if item.is_dir() and catalogue(item.name).is_file()
    )
    return (DEFAULT_LOCALE, *(code for code in found if code != DEFAULT_LOCALE))


def page_name(stem: str, lang: str) -> str:
    """A page's file name in ``lang``: ``GH.html`` in English, ``GH.fr.html`` in French."""
    return f"{stem}.html" if lang == DEFAULT_LOCALE else f"{stem}.{lang}.html"


def language_links(stem: str, lang: str, languages: Iterable[str]) -> list[dict[str, Any]]:
    """The page ``stem`` in each of ``languages`` (``lang`` among them, first when it is
    not), for the language switch and the ``hreflang`` links (``macros.html``): code, the
    language's own name (CLDR), the file beside this page, and whether it is this page."""
    codes = tuple(dict.fromkeys(languages))
    codes = codes if lang in codes else (lang, *codes)
    return [
        {
            "code": code,
            "name": (Locale.parse(code).get_display_name(code) or code).capitalize(),
            "href": page_name(stem, code),
            "current": code == lang,
        }
        for code in codes
    ]


def country_names_in(value: Any, lang: str, kind: type = dict) -> Any:
    """``value`` (a profile, a catalogue, or any part of one; its mappings rebuilt as
    ``kind``) with every country's name in ``lang``: CLDR's name of the territory (Babel),
    as the IATI Country codelist has names in English only; a code CLDR does not know keeps
    the name it has. English names stay as they are.

    Country names sit in three shapes: ``code`` and ``name`` (a country's profile, the
    members of a peer group or a shared indicator, the catalogue's profiles),
    ``country_code`` and ``country_name`` (alignment rows, overlapping pairs, the
    catalogue's countries), and ``key`` and ``label`` in the money ``by_country``."""
    territories = {} if lang == DEFAULT_LOCALE else Locale.parse(lang).territories
    return _walk(value, territories, kind)


def _walk(item: Any, territories: Mapping[str, str], kind: type, countries: bool = False) -> Any:
    if isinstance(item, Mapping):
        out = kind()
        for key, inner in item.items():
            scalar = inner is None or isinstance(inner, str | int | float)
            out[key] = inner if scalar else _walk(inner, territories, kind, key == "by_country")
        if not territories:
            return out
        for code, name in (("code", "name"), ("country_code", "country_name")):
            found = territories.get(_plain(out.get(code)))
            if found and isinstance(out.get(name), str) and len(_plain(out[code])) == 2:
                out[name] = found
        if countries and territories.get(_plain(out.get("key"))) and "label" in out:
            out["label"] = territories[_plain(out["key"])]
        return out
    if isinstance(item, list | tuple):
        return [_walk(inner, territories, kind, countries) for inner in item]
    return item


def _plain(value: object) -> str:
    return "" if value is None else str(value)


@cache
def translations(locale: str = DEFAULT_LOCALE) -> NullTranslations:
    """The gettext translations of ``locale``, compiled from its ``.po`` catalogue."""
    if not LANGUAGE_CODE.fullmatch(locale):
        raise ValueError(f"not a language code: {locale!r} (two or three lowercase letters)")
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    path = catalogue(locale)
    if not path.is_file():
        raise ValueError(
            f"no translation for {locale!r}: add publish/locale/{locale}/LC_MESSAGES/"
            "messages.po, a translation of the English messages (copy the French one)"
        )
    with path.open("rb") as po:
        messages = read_po(po, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, messages)
    compiled.seek(0)
    return Translations(compiled)


def ordinal(n: int, locale: str = DEFAULT_LOCALE) -> str:
    """``1st``, ``22nd``; French ``1er``, ``2e``: CLDR's ordinal form of ``n``, translated."""
    t = translations(locale)
    form = Locale.parse(locale).ordinal_form(n)
    texts = {
        "one": str(t.pgettext("ordinal", "%(n)sst")),
        "two": str(t.pgettext("ordinal", "%(n)snd")),
        "few": str(t.pgettext("ordinal", "%(n)srd")),
    }
    return texts.get(form, str(t.pgettext("ordinal", "%(n)sth"))) % {"n": n}


def rank(position: object, size: object, tied: object = 1, locale: str = DEFAULT_LOCALE) -> str:
    """``2nd of 4``; ``joint 1st of 4`` when others share the rank (``tied`` > 1)."""
    t = translations(locale)
    place, n, sharing = formats.number(position), formats.number(size), formats.number(tied)
    if place is None or n is None:
        return formats.MISSING
    words = {"ordinal": ordinal(int(place), locale), "n": int(n)}
    if sharing is not None and sharing > 1:
        return t.gettext("joint %(ordinal)s of %(n)s") % words
    return t.gettext("%(ordinal)s of %(n)s") % words


def long_date(value: object, locale: str = DEFAULT_LOCALE) -> str:
    """``1 January 2024`` (CLDR's month names; French ``1er janvier 2024``)."""
    text = "" if value is None else str(value)
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        return text or formats.MISSING
    shown = formats.format_date(day.isoformat(), locale, "d MMMM y")
    if day.day == 1:
        first = translations(locale).pgettext("first day of a month", "1")
        shown = str(first) + shown[1:]
    return shown


def years(values: Iterable[object], locale: str = DEFAULT_LOCALE) -> str:
    """``2021`` or ``2019 to 2024``."""
    found = sorted({int(y) for y in (formats.number(v) for v in values) if y is not None})
    if not found:
        return formats.MISSING
    if found[0] == found[-1]:
        return str(found[0])
    text = translations(locale).gettext("%(first)s to %(last)s")
    return text % {"first": found[0], "last": found[-1]}


def usd(value: object, locale: str = DEFAULT_LOCALE, compact: bool = True) -> str:
    """US dollars in the page's language: ``USD 1.2 million``, ``USD 329,644`` (French
    ``1,2 million USD``); ``compact=False`` writes every dollar (``USD 1,234,567``), for
    tables. The amount is CLDR's (:func:`publish.formats.format_usd_amount`); where the
    currency goes is the message ``USD %(amount)s``."""
    amount = formats.format_usd_amount(value, locale, compact)
    if amount == formats.MISSING:
        return amount
    return translations(locale).gettext("USD %(amount)s") % {"amount": amount}


def data_value(value: object) -> str:
    """A number as a ``data-value`` attribute holds it (``repr`` of the float), else empty."""
    parsed = formats.number(value)
    return "" if parsed is None else repr(parsed)


@cache
def environment(locale: str = DEFAULT_LOCALE) -> Environment:
    """The template environment whose filters format for ``locale`` (a CLDR identifier)."""
    env = Environment(
        loader=PackageLoader("publish", TEMPLATES),
        autoescape=select_autoescape(("html",)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        count=partial(formats.format_count, locale=locale),
        usd=partial(usd, locale=locale),
        usd_full=partial(usd, locale=locale, compact=False),
        share=partial(formats.format_share, locale=locale),
        plain=partial(formats.format_plain, locale=locale),
        bytes=partial(formats.format_bytes, locale=locale),
        decimal=lambda value, places: formats.format_decimal_places(value, places, locale),
        date=partial(formats.format_date, locale=locale),
        timestamp=partial(formats.format_timestamp, locale=locale),
        short_hash=formats.short_hash,
        rank=partial(rank, locale=locale),
        long_date=partial(long_date, locale=locale),
        years=partial(years, locale=locale),
        data=data_value,
        text=lambda value: "" if value is None else str(value),
        number=formats.number,
    )
    env.globals["locale"] = locale
    return env


def render(template: str, /, locale: str = DEFAULT_LOCALE, **data: Any) -> str:
    """``template`` rendered with ``data`` for ``locale``."""
    return environment(locale).get_template(template).render(**data)

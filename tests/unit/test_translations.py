"""The gettext catalogues of the pages (publish/locale/): every message the templates and
the Python code use is translated, and no catalogue keeps a message nobody uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from publish.render import available_locales

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "publish" / "locale"


def _used() -> dict[str | tuple[str, str], list[str]]:
    """Every message id (with its context, when it has one) and where it is used, read as
    ``pybabel extract -F babel.cfg`` reads them."""
    method_map = [
        ("templates/**.html", "jinja2"),
        ("**.py", "python"),
    ]
    options = {
        "templates/**.html": {
            "extensions": "jinja2.ext.i18n",
            "trim_blocks": "true",
            "lstrip_blocks": "true",
        }
    }
    found: dict[str | tuple[str, str], list[str]] = {}
    for filename, line, message, _comments, context in extract_from_dir(
        ROOT / "publish",
        method_map,
        options,
        keywords={
            "_": None,
            "gettext": None,
            "N_": None,  # a text marked for translation, translated where it is shown
            "ngettext": (1, 2),
            "pgettext": ((1, "c"), 2),
        },
    ):
        ids = [message] if isinstance(message, str) else [m for m in message if m]
        for msgid in ids:
            key = (msgid, context) if context else msgid
            found.setdefault(key, []).append(f"{filename}:{line}")
    return found


def _catalogue(lang: str) -> Catalog:
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=lang)


def test_the_configuration_is_babels() -> None:
    text = (ROOT / "babel.cfg").read_text(encoding="utf-8")
    assert "[jinja2: publish/templates/**.html]" in text
    assert "[python: publish/**.py]" in text


def test_messages_are_found_in_templates_and_code() -> None:
    used = _used()
    assert "Country profile" in used
    assert ("%(n)sst", "ordinal") in used  # publish/render.py
    assert "Training" in used  # publish/profile_html.py
    assert any("profile_parts.html" in where for where in used["CD share of disbursements"])


@pytest.mark.parametrize("lang", [lang for lang in available_locales() if lang != "en"])
def test_every_message_is_translated_and_none_is_unused(lang: str) -> None:
    used = _used()
    catalogue = _catalogue(lang)
    known: dict[str | tuple[str, str], Message] = {}
    for message in catalogue:
        for msgid in [message.id] if isinstance(message.id, str) else message.id:
            if msgid:
                known[(msgid, message.context) if message.context else msgid] = message
    missing = sorted(str(key) for key in used if key not in known)
    assert not missing, f"not in publish/locale/{lang}/LC_MESSAGES/messages.po: {missing}"
    untranslated = sorted(
        str(key)
        for key, m in known.items()
        if not (m.string if isinstance(m.string, str) else all(m.string or ()))
    )
    assert not untranslated, f"translate in {lang}: {untranslated}"
    unused = sorted(str(key) for key in known if key not in used)
    assert not unused, f"no longer used, remove from {lang}: {unused}"
    fuzzy = sorted(str(key) for key, m in known.items() if m.fuzzy)
    assert not fuzzy, fuzzy
    # Babel's checks: the same python-format placeholders in every translation.
    problems = [(message.id, [str(e) for e in errors]) for message, errors in catalogue.check()]
    assert not problems, problems

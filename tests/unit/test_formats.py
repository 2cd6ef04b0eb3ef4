"""Figures through Babel (publish/formats.py) and the template environment (publish/render.py)."""

from __future__ import annotations

import jinja2
import pytest

from publish.formats import (
    format_bytes,
    format_count,
    format_date,
    format_plain,
    format_share,
    format_timestamp,
)
from publish.render import environment, usd
from publish.site import render_release_html

NNBSP = "\u202f"  # narrow no-break space: the French thousands separator
NBSP = "\u00a0"  # no-break space: before % in French (CLDR)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        # a tie of the stored four decimals rounds as Python's own formatting did
        (0.3105, "31.1%"),
        (0.0005, "0.1%"),
        (0.4028, "40.3%"),
        (1, "100.0%"),
    ],
)
def test_shares_round_as_before(value: float, shown: str) -> None:
    assert format_share(value) == shown


def test_millions_keep_their_decimal_and_round_into_the_next_word() -> None:
    assert usd(1_982_577.14) == "USD 2.0 million"
    assert usd(996_617_003.68) == "USD 996.6 million"
    assert usd(999_960_000) == "USD 1.0 billion"
    assert usd(-3_400_000) == "USD -3.4 million"


def test_french_figures_come_from_cldr() -> None:
    assert format_count(12480, "fr") == f"12{NNBSP}480"
    assert usd(1_982_577.14, "fr") == f"2,0 millions{NBSP}USD"
    assert usd(1_500_000_000, "fr") == f"1,5 milliard{NBSP}USD"
    assert format_share(0.6693, "fr") == f"66,9{NBSP}%"
    assert format_plain(1982577.14, "fr") == f"1{NNBSP}982{NNBSP}577,14"
    assert format_bytes(2_246_400, "fr") == f"2,2{NNBSP}Mo"
    assert format_bytes(785, "fr") == f"785{NNBSP}o"
    assert format_bytes(785) == "785 B"
    assert format_date("2026-11-28T04:20:00Z", "fr", "d MMMM y") == "28 novembre 2026"


def test_dates_and_times_and_what_is_not_one() -> None:
    assert format_date("2026-11-28") == "2026-11-28"
    assert format_timestamp("2026-11-28T04:20:00Z") == "2026-11-28 04:20 UTC"
    assert format_timestamp("2026-11-28T04:20:00+01:00") == "2026-11-28 04:20+01:00"
    assert format_timestamp("yesterday") == "yesterday"
    assert format_date(None) == ""


def test_the_environment_escapes_and_refuses_undefined_names() -> None:
    env = environment()
    template = env.from_string("{{ value }}|{{ amount|usd }}|{{ share|share }}")
    assert template.render(value="<b>&", amount=10628569.07, share=0.6693) == (
        "&lt;b&gt;&amp;|USD 10.6 million|66.9%"
    )
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing }}").render()
    assert environment("fr").from_string("{{ 0.5|share }}").render() == f"50,0{NBSP}%"


def test_the_templates_are_found_in_the_package() -> None:
    names = set(environment().list_templates())
    assert {"base.html", "macros.html", "charts.html", "index.html", "release.html"} <= names
    page = render_release_html("T", "1", "2026-11-28", [], has_quality=False, has_profiles=False)
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')

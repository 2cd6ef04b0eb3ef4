"""The string helpers of the pages still built by hand in Python (:mod:`publish.profile_html`,
:mod:`publish.quality_html`): escaping and a link. They go when those pages are templates
too (issue 22); the catalogue's pages (:mod:`publish.site`) are templates already."""

from __future__ import annotations

import html


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _link(target: str, text: str, **attributes: object) -> str:
    extra = "".join(
        f' {key.replace("_", "-")}="{_esc(value)}"' for key, value in attributes.items()
    )
    return f'<a href="{_esc(target)}"{extra}>{_esc(text)}</a>'

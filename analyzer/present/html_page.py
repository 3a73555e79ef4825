"""The pieces every efftrace HTML page is made of: escaped tables, chart slots, one inlined page.

Pages open with no network: the stylesheet and the chart script are inlined, and the data the
charts draw is one JSON block. Everything a trace or a user wrote (names, commands, configs) is
escaped here on the way into HTML, and the JSON block cannot close its own ``<script>`` element;
the script only ever sets ``textContent``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import numpy as np

Cell = Any


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    numeric: Iterable[int] = (),
    flags: Sequence[bool] | None = None,
) -> str:
    """An HTML table; columns in ``numeric`` align right, rows whose flag is true are marked."""
    numeric = set(numeric)
    head = "".join(f"<th>{esc(header)}</th>" for header in headers)
    lines = []
    for index, row in enumerate(rows):
        cells = "".join(
            f'<td class="{"num" if column in numeric else ""}">{esc(cell)}</td>' for column, cell in enumerate(row)
        )
        flagged = flags is not None and flags[index]
        lines.append(f'<tr class="{"flag" if flagged else ""}">{cells}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def time_chart(key: str, title: str) -> str:
    """A slot the script fills with the time chart ``key`` of the page's data."""
    return (
        f'<div class="chart" data-time-chart="{esc(key)}"><div class="title">{esc(title)}</div>'
        '<div class="legend"></div><canvas></canvas><div class="readout"></div></div>'
    )


def bar_chart(key: str, title: str) -> str:
    return (
        f'<div class="chart bars" data-bar-chart="{esc(key)}"><div class="title">{esc(title)}</div>'
        "<canvas></canvas></div>"
    )


def rounded(values: np.ndarray, decimals: int) -> list[float | None]:
    """A display array as a JSON-ready list, NaN as null (JSON has no NaN)."""
    values = np.round(np.asarray(values, dtype=np.float64), decimals)
    result = values.astype(object)
    result[np.isnan(values)] = None
    return result.tolist()


def _asset(name: str) -> str:
    return resources.files("efftrace.analyzer.present").joinpath("report_assets", name).read_text(encoding="utf-8")


def _json_block(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    # "<" never appears raw, so no "</script>" or "<!--" inside a trace's strings can end the block.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(title: str, body: str, payload: dict[str, Any]) -> str:
    """A whole self-contained page: ``body`` (already escaped) and the charts' ``payload``."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{esc(title)}</title><style>{_asset('report.css')}</style></head>"
        f"<body><main>{body}</main>"
        f'<script type="application/json" id="efftrace-data">{_json_block(payload)}</script>'
        f"<script>{_asset('charts.js')}</script></body></html>\n"
    )

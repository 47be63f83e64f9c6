"""Events per day by outcome as inline SVG, drawn on the server: the page loads no script library
and no external asset (CI and ops networks may have no internet)."""

from __future__ import annotations

from html import escape
from typing import Any

KLEUR = {
    "ROUTED": "#2e7d32", "INVALID": "#c62828", "UNROUTABLE": "#ef6c00", "DUPLICATE": "#757575",
    "ONTVANGEN": "#1565c0", "VERWERKT": "#00838f", "GEWEIGERD": "#6a1b9a", "OVERDUE": "#c62828",
}
B, H = 720, 220  # plot area
LINKS, ONDER, LEGENDA = 48, 40, 24


def staafdiagram(grafiek: dict[str, Any]) -> str:
    """Stacked bars, one per day; every segment names its day, outcome and count (title, data-*)."""
    uitkomsten, dagen = grafiek["uitkomsten"], grafiek["dagen"]
    hoogste = max((sum(d["aantallen"].values()) for d in dagen), default=0) or 1
    stap = B / max(len(dagen), 1)
    breed = max(stap * 0.7, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="events per dag per uitkomst" '
             f'class="grafiek" width="{LINKS + B + 8}" height="{LEGENDA + H + ONDER}" '
             f'viewBox="0 0 {LINKS + B + 8} {LEGENDA + H + ONDER}">']
    for i, u in enumerate(uitkomsten):  # the legend
        x = LINKS + i * 120
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{KLEUR.get(u, "#999")}"/>'
                     f'<text x="{x + 16}" y="14" font-size="12">{escape(u)}</text>')
    basis = LEGENDA + H
    parts.append(f'<line x1="{LINKS}" y1="{basis}" x2="{LINKS + B}" y2="{basis}" stroke="#444"/>'
                 f'<text x="{LINKS - 6}" y="{LEGENDA + 10}" font-size="11" text-anchor="end">{hoogste}</text>'
                 f'<text x="{LINKS - 6}" y="{basis}" font-size="11" text-anchor="end">0</text>')
    for i, d in enumerate(dagen):
        x = LINKS + i * stap + (stap - breed) / 2
        dag = escape(d["dag"])
        parts.append(f'<g class="dag" data-dag="{dag}">')
        y = float(basis)
        for u in uitkomsten:
            n = int(d["aantallen"].get(u, 0))
            if n:
                h = H * n / hoogste
                y -= h
                parts.append(f'<rect class="staaf" data-uitkomst="{escape(u)}" data-aantal="{n}" x="{x:.1f}" '
                             f'y="{y:.1f}" width="{breed:.1f}" height="{h:.1f}" fill="{KLEUR.get(u, "#999")}">'
                             f'<title>{dag} {escape(u)}: {n}</title></rect>')
        parts.append(f'<text x="{x + breed / 2:.1f}" y="{basis + 14}" font-size="10" text-anchor="middle">'
                     f'{dag[5:]}</text></g>')
    parts.append("</svg>")
    return "".join(parts)

"""The dashboard's one HTML page: Jinja2 with autoescape, the template kept in code (no package
data to ship), inline CSS and SVG, no script and no external asset. Filtering is a plain link."""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape
from markupsafe import Markup

from .chart import staafdiagram

PAGINA = """<!doctype html>
<html lang="nl">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="60">
<title>herstelbus{% if v.gemeente %} – {{ v.gemeente }}{% endif %}</title>
<style>
 body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
 table { border-collapse: collapse; margin-bottom: 1.5em; }
 th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }
 td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
 tr.gemeente:hover { background: #f2f6fb; }
 .let { color: #c62828; font-weight: bold; }
 .kafka { color: #555; }
 section { margin-bottom: 1em; }
</style>
</head>
<body>
<h1>herstelbus{% if v.gemeente %} – <span id="filter">{{ v.gemeente }}</span>{% endif %}</h1>
<p class="kafka" id="kafka">Kafka: {% if k.bijgewerkt %}bijgewerkt ({{ v.gelezen }} records gelezen sinds de start){% else %}nog aan het inlezen{% endif %}{% if k.fout %} – <span class="let">fout: {{ k.fout }}</span>{% endif %}{% if v.gemeente %} · <a id="alle" href="/">alle gemeenten</a>{% endif %}</p>

<section>
<h2>Per gemeente</h2>
<table id="gemeenten">
<thead><tr><th>gemeente</th><th>naam</th><th class="n">routed</th><th class="n">ontvangen</th><th class="n">verwerkt</th><th class="n">geweigerd</th><th class="n">overdue</th><th class="n">oudste open</th></tr></thead>
<tbody>
{% for r in v.gemeenten %}<tr class="gemeente" data-gemeente="{{ r.gemeentecode }}">
<td><a href="/?gemeente={{ r.gemeentecode }}">{{ r.gemeentecode }}</a></td><td>{{ r.naam }}</td>
<td class="n routed">{{ r.routed }}</td><td class="n ontvangen">{{ r.ontvangen }}</td><td class="n verwerkt">{{ r.verwerkt }}</td>
<td class="n geweigerd">{{ r.geweigerd }}</td><td class="n overdue{% if r.overdue %} let{% endif %}">{{ r.overdue }}</td><td class="n oudste">{{ r.oudste_open }}</td></tr>
{% else %}<tr><td colspan="8">geen gerouteerde events</td></tr>
{% endfor %}</tbody>
<tfoot><tr id="totaal"><th colspan="2">totaal</th>{% for k in ("routed", "ontvangen", "verwerkt", "geweigerd", "overdue") %}<th class="n {{ k }}">{{ v.totalen[k] }}</th>{% endfor %}<th></th></tr></tfoot>
</table>
</section>

<section>
<h2>Events per dag{% if v.gemeente %} voor {{ v.gemeente }}{% endif %}</h2>
{{ grafiek }}
</section>

{% for naam, rijen in (("Dead letters", v.deadletter), ("Niet routeerbaar", v.unroutable)) %}
<section>
<h2>{{ naam }} (alle gemeenten)</h2>
<table id="{{ 'deadletter' if loop.first else 'unroutable' }}">
<thead><tr><th>reden</th><th>component</th><th>bron topic</th><th class="n">aantal</th></tr></thead>
<tbody>
{% for r in rijen %}<tr class="reden" data-reden="{{ r.reden }}"><td>{{ r.reden }}</td><td>{{ r.component }}</td><td>{{ r.bron_topic }}</td><td class="n aantal">{{ r.aantal }}</td></tr>
{% else %}<tr><td colspan="4">geen</td></tr>
{% endfor %}</tbody>
</table>
</section>
{% endfor %}

<section>
<h2>Audit (recent{% if v.gemeente %}, {{ v.gemeente }}{% endif %})</h2>
<table id="audit">
<thead><tr><th>tijd</th><th>component</th><th>actie</th><th>resultaat</th><th>reden</th><th>gemeente</th><th>topic</th><th>event</th><th>aantallen</th></tr></thead>
<tbody>
{% for a in v.audit %}<tr class="audit"><td>{{ a.at }}</td><td>{{ a.component }}</td><td>{{ a.actie }}</td><td>{{ a.resultaat }}</td><td>{{ a.reden or "" }}</td><td>{{ a.gemeentecode or "" }}</td><td>{{ a.topic or "" }}</td><td>{{ a.event_id or "" }}</td><td>{% for k, n in a.aantallen.items() %}{{ k }}={{ n }} {% endfor %}</td></tr>
{% else %}<tr><td colspan="9">geen</td></tr>
{% endfor %}</tbody>
</table>
</section>
{% if v.onleesbaar %}<p class="kafka">Onleesbare records (niet getoond): {% for t, n in v.onleesbaar.items() %}{{ t }} {{ n }} {% endfor %}</p>{% endif %}
</body>
</html>
"""

_env = Environment(loader=DictLoader({"pagina.html": PAGINA}), autoescape=select_autoescape(default=True))


def render(view: dict[str, Any], kafka: dict[str, Any]) -> str:
    # The SVG is built from codes and integers with its text escaped (chart.py): safe as markup.
    return _env.get_template("pagina.html").render(v=view, k=kafka, grafiek=Markup(staafdiagram(view["grafiek"])))

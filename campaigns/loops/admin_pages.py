"""The loops admin's own HTML: the figures chart and the dry-run page (Django template text,
kept beside the admin that renders it)."""

from __future__ import annotations

import json

from django.template import engines
from django.utils.safestring import SafeString

from campaigns.loops.stats import FIGURES, loop_days

CHART_DAYS = 30
COLOURS = {"started": "#6366f1", "emailed": "#10b981", "exited": "#f59e0b", "unsubscribed": "#ef4444"}

FIGURES_HTML = """{% load unfold %}
<div class="sy-chart w-full" id="sy-loop-figures" style="min-width: 520px">
  <table class="sy-table" style="margin-bottom: 12px">
    <thead><tr>{% for label, total in totals %}<th>{{ label }}</th>{% endfor %}</tr></thead>
    <tbody><tr>{% for label, total in totals %}<td class="sy-figure-{{ label }}">{{ total }}</td>{% endfor %}</tr></tbody>
  </table>
  {% component "unfold/components/chart/bar.html" with data=data options=options height=240 %}{% endcomponent %}
  <p class="sy-figure-sub" style="margin-top: 6px">Per UTC day, last {{ days }} days: {{ window }}. The table above counts every day.</p>
</div>
"""

DRY_RUN_HTML = """{% extends "admin/base_site.html" %}
{% load unfold %}
{% block breadcrumbs %}{% endblock %}
{% block content %}
<div id="sy-dry-run">
  {% component "unfold/components/card.html" with title=title %}
    <p class="mb-2">The last {{ limit }} events named {{ names }}, newest first, judged by this loop's rules
      against each contact as they are now (list, audience, subscription), with re-entry replayed in order.
      Nothing is sent or saved.{% if not loop.enabled %} <strong>The loop is disabled</strong>: this is what it
      would do once enabled.{% endif %}</p>
    <form method="get" class="mb-4 flex gap-2 items-center">
      <label for="sy-n">Events</label>
      <input id="sy-n" name="n" type="number" min="1" max="{{ max }}" value="{{ limit }}" class="border rounded px-2 py-1" style="width: 7em">
      {% component "unfold/components/button.html" with submit=1 %}Run again{% endcomponent %}
      <span class="sy-muted">{{ starts }} of {{ rows|length }} would start it.</span>
    </form>
    {% if rows %}
    <table class="sy-table" id="sy-dry-run-rows">
      <thead><tr><th>Event time (UTC)</th><th>Event</th><th>Contact</th><th>Starts?</th><th>Why</th></tr></thead>
      <tbody>
      {% for row in rows %}
        <tr class="{% if row.starts %}sy-starts{% else %}sy-refused{% endif %}">
          <td class="whitespace-nowrap">{{ row.event.timestamp|date:"Y-m-d H:i:s" }}</td>
          <td>{{ row.event.name }} <span class="sy-muted">#{{ row.event.pk }}</span></td>
          <td>{% if row.contact %}<a class="sy-link" href="{% url 'admin:contacts_contact_change' row.contact.pk %}">{{ row.contact }}</a>{% else %}<span class="sy-muted">erased</span>{% endif %}</td>
          <td>{% if row.starts %}{% include "unfold/helpers/label.html" with text="yes" type="success" %}{% else %}{% include "unfold/helpers/label.html" with text="no" type="default" %}{% endif %}</td>
          <td>{% if row.enrolment_id %}<a class="sy-link" href="{% url 'admin:campaigns_enrolment_change' row.enrolment_id %}">{{ row.why }}</a>{% else %}{{ row.why }}{% endif %}</td>
        </tr>
      {% endfor %}
      </tbody>
    </table>
    {% else %}
      <p>No event named {{ names }} has been recorded yet.</p>
    {% endif %}
    <p class="mt-4"><a class="sy-link" href="{{ back_url }}">← Back to the loop</a></p>
  {% endcomponent %}
</div>
{% endblock %}
"""


def _options() -> str:
    axis = {"grid": {"color": "rgba(156,163,175,0.2)"}, "ticks": {"color": "#6b7280"}}
    return json.dumps(
        {
            "animation": False,
            "responsive": True,
            "maintainAspectRatio": False,
            "plugins": {"legend": {"display": True, "position": "top", "align": "end"}},
            "scales": {
                "x": {**axis, "title": {"display": True, "text": "UTC day", "color": "#6b7280"}},
                "y": {
                    **axis,
                    "beginAtZero": True,
                    "ticks": {"color": "#6b7280", "precision": 0},
                    "title": {"display": True, "text": "per day", "color": "#6b7280"},
                },
            },
        }
    )


def figures_html(loop_id: int, totals: dict[str, int], days: int = CHART_DAYS) -> SafeString:
    """The loop's totals and a bar chart of the last `days` days (one query on LoopDay)."""
    rows = loop_days(loop_id, days)
    data = {
        "labels": [row["day"].strftime("%m-%d") for row in rows],
        "datasets": [
            {"label": figure, "data": [row[figure] for row in rows], "backgroundColor": COLOURS[figure]}
            for figure in FIGURES
        ],
    }
    window = ", ".join(f"{figure} {sum(row[figure] for row in rows)}" for figure in FIGURES)
    template = engines["django"].from_string(FIGURES_HTML)
    return SafeString(
        template.render(
            {
                "data": json.dumps(data),
                "options": _options(),
                "totals": [(f, totals.get(f, 0)) for f in FIGURES],
                "days": days,
                "window": window,
            }
        )
    )


def dry_run_page(request, context: dict) -> str:
    return engines["django"].from_string(DRY_RUN_HTML).render(context, request)

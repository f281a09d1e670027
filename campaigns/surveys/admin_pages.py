"""The campaign page's own HTML: its setup box, and its figures with the weekly trend chart and
the promoter / passive / detractor split (Django template text, beside the admin that uses it)."""

from __future__ import annotations

import json

from django.template import engines
from django.utils.safestring import SafeString

from campaigns.surveys.models import Campaign, DispatchStatus
from campaigns.surveys.scales import HIGH, LOW, MIDDLE, Figures
from campaigns.surveys.stats import figures, weekly
from common.admin_tools import capped_count, changelist_url, chart_options

WEEKS = 12
COLOURS = {HIGH: "#16a34a", MIDDLE: "#9ca3af", LOW: "#dc2626"}

SETUP_HTML = """<div id="sy-campaign-setup">
  <p>Campaign ID: <strong id="sy-campaign-id">{{ campaign.pk }}</strong>
    ({{ campaign.get_status_display }}).</p>
  <p>Send {% if names %}these Segment track events, named exactly: {% for n in names %}<code>{{ n }}</code>{% if not forloop.last %}, {% endif %}{% endfor %}{% else %}<strong>no event yet: add trigger events</strong>{% endif %},
    {% if campaign.integration_id %}through the integration <strong>{{ campaign.integration }}</strong>{% else %}through any inbound integration{% endif %}
    (its key is the write key).</p>
  <p class="sy-muted">A track's userId (or email) names the contact; with the Promoter kind the userId must have been
    identified before, with the Retently kind the track's <code>properties.email</code> creates the customer.</p>
  {% if problem %}<p class="sy-warning" id="sy-campaign-problem">Cannot be activated yet ({{ problem.code }}): {{ problem.message }}</p>{% endif %}
</div>
"""

FIGURES_HTML = """{% load unfold %}
<div class="sy-chart w-full" id="sy-survey-figures" style="min-width: 520px">
  <table class="sy-table" style="margin-bottom: 12px">
    <thead><tr><th>Sent</th><th>Responses</th><th>Response rate</th><th>{{ score_label }}</th>
      {% for label, count, share, url in split %}<th>{{ label }}</th>{% endfor %}</tr></thead>
    <tbody><tr>
      <td><a class="sy-link" href="{{ sent_url }}">{{ total.sent }}</a></td>
      <td><a class="sy-link" href="{{ responses_url }}">{{ total.responses }}</a></td>
      <td>{% if total.response_rate is not None %}{{ total.response_rate }}%{% else %}—{% endif %}</td>
      <td id="sy-survey-score">{% if total.score is not None %}{{ total.score }}{% else %}—{% endif %}</td>
      {% for label, count, share, url in split %}<td><a class="sy-link" href="{{ url }}">{{ count }}</a>{% if share is not None %} ({{ share }}%){% endif %}</td>{% endfor %}
    </tr></tbody>
  </table>
  <table class="sy-table" style="margin-bottom: 12px" id="sy-survey-distribution">
    <thead><tr><th>Score</th>{% for score, n in distribution %}<th>{{ score }}</th>{% endfor %}</tr></thead>
    <tbody><tr><td>Responses</td>{% for score, n in distribution %}<td>{{ n }}</td>{% endfor %}</tr></tbody>
  </table>
  <p class="sy-figure-sub">{{ score_label }} by week (Monday to Sunday, UTC), last {{ weeks }} weeks</p>
  {% component "unfold/components/chart/line.html" with data=trend options=trend_options height=200 %}{% endcomponent %}
  <p class="sy-figure-sub" style="margin-top: 10px">Responses by week, split by category</p>
  {% component "unfold/components/chart/bar.html" with data=bars options=bar_options height=200 %}{% endcomponent %}
  <p class="sy-figure-sub" style="margin-top: 10px">Dispatches:
    {% for label, count, url in statuses %}<a class="sy-link" href="{{ url }}">{{ count }} {{ label }}</a>{% if not forloop.last %} · {% endif %}{% endfor %}</p>
</div>
"""


def setup_html(campaign: Campaign, problem) -> SafeString:
    template = engines["django"].from_string(SETUP_HTML)
    return SafeString(
        template.render({"campaign": campaign, "names": campaign.trigger_events or [], "problem": problem})
    )


def _score_label(metric: str) -> str:
    return {"nps": "NPS", "csat": "CSAT (% 4–5)", "ces": "CES (mean)", "five_star": "Stars (mean)"}[metric]


def _split(campaign: Campaign, total: Figures) -> list[tuple[str, int, float | None, str]]:
    scale = campaign.scale
    high, middle, low = scale.names
    names = {HIGH: high, MIDDLE: middle, LOW: low}
    rows = []
    for level in (HIGH, MIDDLE, LOW):
        url = changelist_url("campaigns.surveyresponse", campaign__id__exact=campaign.pk, category=names[level])
        rows.append((f"{names[level]}s", total.count(level), total.share(level), url))
    return rows


def figures_html(campaign: Campaign) -> SafeString:
    total = figures(campaign)
    weeks = weekly(campaign, weeks=WEEKS)
    labels = [start.strftime("%m-%d") for start, _f in weeks]
    trend = {
        "labels": labels,
        "datasets": [
            {
                "label": _score_label(campaign.metric),
                "data": [f.score for _s, f in weeks],
                "borderColor": "#6366f1",
                "backgroundColor": "#6366f1",
                "spanGaps": True,
            }
        ],
    }
    names = dict(zip((HIGH, MIDDLE, LOW), campaign.scale.names, strict=True))
    bars = {
        "labels": labels,
        "datasets": [
            {
                "label": f"{names[level]}s",
                "data": [f.count(level) for _s, f in weeks],
                "backgroundColor": COLOURS[level],
            }
            for level in (HIGH, MIDDLE, LOW)
        ],
    }
    bar_options = json.loads(chart_options(y_title="responses", x_title="week starting", legend=True))
    bar_options["scales"]["x"]["stacked"] = bar_options["scales"]["y"]["stacked"] = True
    trend_options = json.loads(
        chart_options(y_title=_score_label(campaign.metric), x_title="week starting", legend=False)
    )
    trend_options["scales"]["y"]["beginAtZero"] = campaign.metric != "nps"
    trend_options["scales"]["y"]["ticks"].pop("precision", None)
    statuses = []
    for status in DispatchStatus.values:
        count = capped_count(campaign.dispatches.filter(status=status).order_by("-id"))
        url = changelist_url("campaigns.surveydispatch", campaign__id__exact=campaign.pk, status__exact=status)
        statuses.append((status, count, url))
    context = {
        "total": total,
        "score_label": _score_label(campaign.metric),
        "split": _split(campaign, total),
        "distribution": [(score, total.distribution.get(score, 0)) for score in campaign.scale.scores],
        "weeks": WEEKS,
        "trend": json.dumps(trend),
        "trend_options": json.dumps(trend_options),
        "bars": json.dumps(bars),
        "bar_options": json.dumps(bar_options),
        "statuses": statuses,
        "sent_url": changelist_url("campaigns.surveydispatch", campaign__id__exact=campaign.pk),
        "responses_url": changelist_url("campaigns.surveyresponse", campaign__id__exact=campaign.pk),
    }
    return SafeString(engines["django"].from_string(FIGURES_HTML).render(context))

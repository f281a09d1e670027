"""A campaign's raw figures (SurveyCount) and the metrics computed from them.

Counts are written by the statements that change what they count (a survey's follow-up adds
"sent", an answer adds its score, a changed answer moves one from the old score to the new),
inside the same transaction, as one upsert, in (campaign, day, key) order so two workers never
wait on each other in a cycle. Reading a campaign's figures for any period is one GROUP BY
over a few rows per day, however many responses it has.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta

from django.db import connection
from django.db.models import Sum

from campaigns.surveys.models import SurveyCount
from campaigns.surveys.scales import Figures
from common import clock

SENT = "sent"


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[tuple[int, date, str]] = Counter()

    def add(self, campaign_id: int, key: str | int, n: int = 1, *, day: date | None = None) -> None:
        if n:
            self.counts[(campaign_id, day or clock.now().date(), str(key))] += n

    def save(self) -> None:
        rows = sorted((k, n) for k, n in self.counts.items() if n)
        self.counts.clear()
        if not rows:
            return
        table = connection.ops.quote_name(SurveyCount._meta.db_table)
        values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
        params: list = []
        for (campaign_id, day, key), n in rows:
            params += [campaign_id, day, key, n]
        # Only the model's own table name is interpolated; values are parameters.
        sql = (
            f"INSERT INTO {table} (campaign_id, day, key, n) VALUES {values} "  # noqa: S608
            f"ON CONFLICT (campaign_id, day, key) DO UPDATE SET n = {table}.n + excluded.n"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def figures(campaign, *, since: date | None = None, until: date | None = None) -> Figures:
    """The campaign's figures over [since, until] (UTC days; open ends: all of them)."""
    rows = SurveyCount.objects.filter(campaign_id=campaign.pk)
    if since:
        rows = rows.filter(day__gte=since)
    if until:
        rows = rows.filter(day__lte=until)
    sent, distribution = 0, {}
    for key, n in rows.values("key").annotate(n=Sum("n")).values_list("key", "n"):
        if key == SENT:
            sent = n or 0
        elif key.lstrip("-").isdigit() and n:
            distribution[int(key)] = n
    return Figures(campaign.metric, sent, distribution)


def figures_many(campaigns) -> dict[int, Figures]:
    """Each campaign's figures over all days, in one query (the admin list, the API list)."""
    campaigns = list(campaigns)
    sent: dict[int, int] = defaultdict(int)
    distributions: dict[int, dict[int, int]] = defaultdict(dict)
    rows = (
        SurveyCount.objects.filter(campaign_id__in=[c.pk for c in campaigns])
        .values("campaign_id", "key")
        .annotate(n=Sum("n"))
        .values_list("campaign_id", "key", "n")
    )
    for campaign_id, key, n in rows:
        if key == SENT:
            sent[campaign_id] = n or 0
        elif key.lstrip("-").isdigit() and n:
            distributions[campaign_id][int(key)] = n
    return {c.pk: Figures(c.metric, sent[c.pk], distributions[c.pk]) for c in campaigns}


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly(campaign, *, weeks: int = 12) -> list[tuple[date, Figures]]:
    """The last `weeks` weeks (Monday to Sunday, UTC), oldest first, each with its figures."""
    first = monday(clock.now().date()) - timedelta(weeks=weeks - 1)
    by_week: dict[date, dict] = {first + timedelta(weeks=n): {"sent": 0, "d": Counter()} for n in range(weeks)}
    for day, key, n in SurveyCount.objects.filter(campaign_id=campaign.pk, day__gte=first).values_list(
        "day", "key", "n"
    ):
        week = by_week.get(monday(day))
        if week is None:
            continue
        if key == SENT:
            week["sent"] += n
        elif key.lstrip("-").isdigit():
            week["d"][int(key)] += n
    return [
        (start, Figures(campaign.metric, data["sent"], {k: v for k, v in data["d"].items() if v}))
        for start, data in sorted(by_week.items())
    ]

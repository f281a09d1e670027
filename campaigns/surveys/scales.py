"""The four survey metrics: their scales, how a score is categorised, and the formulas.

Every figure is computed from the raw distribution ({score: responses}), never stored as a
result, so a formula can be read here and checked against known data:

- NPS (0–10): % promoters (9–10) − % detractors (0–6), from −100 to 100. Passives are 7–8.
- CSAT (1–5): % of responses that are 4 or 5.
- CES (1–7): the mean score; plus the share of 5–7 ("easy").
- 5-star (1–5): the mean score; plus the share of 4–5.

Each metric sorts a score into three categories, named as its users call them (NPS:
promoter / passive / detractor; CSAT: satisfied / neutral / dissatisfied; CES: easy / neutral /
difficult; 5-star: positive / neutral / negative). Autoresponders and notifications speak of
"promoters" and "detractors" for every metric: the high and the low category.
"""

from __future__ import annotations

from dataclasses import dataclass

HIGH, MIDDLE, LOW = "high", "middle", "low"


@dataclass(frozen=True)
class Scale:
    metric: str
    label: str
    low: int
    high: int
    # Inclusive bounds of the high and the low category; what lies between is the middle one.
    high_from: int
    low_to: int
    names: tuple[str, str, str]  # (high, middle, low)
    low_label: str
    high_label: str

    @property
    def scores(self) -> list[int]:
        return list(range(self.low, self.high + 1))

    def valid(self, score: object) -> bool:
        return isinstance(score, int) and not isinstance(score, bool) and self.low <= score <= self.high

    def level(self, score: int) -> str:
        if score >= self.high_from:
            return HIGH
        if score <= self.low_to:
            return LOW
        return MIDDLE

    def category(self, score: int) -> str:
        high, middle, low = self.names
        return {HIGH: high, MIDDLE: middle, LOW: low}[self.level(score)]


SCALES: dict[str, Scale] = {
    "nps": Scale("nps", "NPS (0–10)", 0, 10, 9, 6, ("promoter", "passive", "detractor"), "Not likely", "Very likely"),
    "csat": Scale(
        "csat", "CSAT (1–5)", 1, 5, 4, 2, ("satisfied", "neutral", "dissatisfied"), "Very unsatisfied", "Very satisfied"
    ),
    "ces": Scale("ces", "CES (1–7)", 1, 7, 5, 3, ("easy", "neutral", "difficult"), "Very difficult", "Very easy"),
    "five_star": Scale(
        "five_star", "5-star (1–5)", 1, 5, 4, 2, ("positive", "neutral", "negative"), "Poor", "Excellent"
    ),
}


def scale_of(metric: str) -> Scale:
    return SCALES[metric]


def property_prefix(metric: str) -> str:
    """Contact properties keep the latest result as `<prefix>_score` and `<prefix>_category`."""
    return metric


@dataclass(frozen=True)
class Figures:
    """One campaign's figures over a period, from its distribution and the surveys sent."""

    metric: str
    sent: int
    distribution: dict[int, int]

    @property
    def scale(self) -> Scale:
        return SCALES[self.metric]

    @property
    def responses(self) -> int:
        return sum(self.distribution.values())

    @property
    def response_rate(self) -> float | None:
        """Responses per survey sent, in percent (one decimal); None before anything was sent."""
        if not self.sent:
            return None
        return round(100.0 * self.responses / self.sent, 1)

    def count(self, level: str) -> int:
        return sum(n for score, n in self.distribution.items() if self.scale.level(score) == level)

    def share(self, level: str) -> float | None:
        """The percent of responses in the high, middle or low category (one decimal)."""
        if not self.responses:
            return None
        return round(100.0 * self.count(level) / self.responses, 1)

    @property
    def mean(self) -> float | None:
        if not self.responses:
            return None
        return round(sum(score * n for score, n in self.distribution.items()) / self.responses, 2)

    @property
    def score(self) -> float | None:
        """NPS (−100…100), the CSAT percent, the CES mean or the 5-star mean; None without responses."""
        if not self.responses:
            return None
        if self.metric == "nps":
            total = self.responses
            return round(100.0 * (self.count(HIGH) - self.count(LOW)) / total, 1)
        if self.metric == "csat":
            return self.share(HIGH)
        return self.mean

    def as_api(self) -> dict:
        """The metrics endpoint's shape (CONTRACT.md "Survey campaigns")."""
        data = {
            "sent": self.sent,
            "responses": self.responses,
            "response_rate": self.response_rate,
            "score": self.score,
            "distribution": {str(score): self.distribution.get(score, 0) for score in self.scale.scores},
        }
        if self.metric == "nps":
            data.update(promoters=self.count(HIGH), passives=self.count(MIDDLE), detractors=self.count(LOW))
        return data

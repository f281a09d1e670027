"""The metric formulas on known data, computed from the raw distribution."""

from __future__ import annotations

import pytest

from campaigns.surveys.scales import SCALES, Figures


def test_nps_is_percent_promoters_minus_percent_detractors():
    # 10 answers: 5 promoters (9–10), 2 passives (7–8), 3 detractors (0–6): 50% − 30% = 20.
    figures = Figures("nps", 20, {10: 3, 9: 2, 8: 1, 7: 1, 6: 1, 3: 1, 0: 1})
    assert figures.score == 20.0
    assert (figures.responses, figures.response_rate) == (10, 50.0)
    api = figures.as_api()
    assert (api["promoters"], api["passives"], api["detractors"]) == (5, 2, 3)
    assert api["distribution"] == {str(n): {10: 3, 9: 2, 8: 1, 7: 1, 6: 1, 3: 1, 0: 1}.get(n, 0) for n in range(11)}
    assert Figures("nps", 3, {0: 3}).score == -100.0
    assert Figures("nps", 3, {10: 2, 9: 1}).score == 100.0
    assert Figures("nps", 3, {7: 1, 8: 2}).score == 0.0


def test_csat_is_the_percent_of_four_and_five():
    figures = Figures("csat", 8, {5: 3, 4: 1, 3: 2, 1: 2})
    assert figures.score == 50.0
    assert "promoters" not in figures.as_api()
    assert Figures("csat", 3, {4: 1, 5: 1, 2: 1}).score == 66.7


def test_ces_is_the_mean_plus_the_share_of_five_to_seven():
    figures = Figures("ces", 4, {7: 1, 5: 1, 2: 2})
    assert figures.score == 4.0
    assert figures.share("high") == 50.0


def test_five_star_is_the_mean_plus_the_share_of_four_and_five():
    figures = Figures("five_star", 10, {5: 2, 4: 1, 1: 1})
    assert figures.score == 3.75
    assert figures.share("high") == 75.0
    assert figures.response_rate == 40.0


def test_nothing_answered_gives_no_score_rather_than_zero():
    figures = Figures("nps", 0, {})
    assert (figures.score, figures.response_rate, figures.mean) == (None, None, None)
    assert figures.as_api()["responses"] == 0


@pytest.mark.parametrize(
    ("metric", "low", "middle", "high"),
    [
        ("nps", [0, 6], [7, 8], [9, 10]),
        ("csat", [1, 2], [3], [4, 5]),
        ("ces", [1, 3], [4], [5, 7]),
        ("five_star", [1, 2], [3], [4, 5]),
    ],
)
def test_categories_cover_each_scale(metric, low, middle, high):
    scale = SCALES[metric]
    names = scale.names
    for score in low:
        assert scale.category(score) == names[2]
    for score in middle:
        assert scale.category(score) == names[1]
    for score in high:
        assert scale.category(score) == names[0]
    assert not scale.valid(scale.low - 1) and not scale.valid(scale.high + 1) and not scale.valid(True)

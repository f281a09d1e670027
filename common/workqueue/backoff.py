"""When a failed item is tried again: exponential backoff with jitter, or a fixed schedule.

Jitter spreads the retries of many items that failed together (a partner down for a minute)
so they do not all come back in the same second. "full" draws the whole delay at random
(uniform between 0 and the step); "spread" keeps the step and moves it by ±`spread`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

JITTERS = ("full", "spread", "none")


@dataclass(frozen=True)
class Backoff:
    """`first` seconds after the first failed attempt, then ×`factor` each time, up to `cap`.

    A `schedule` replaces the curve with fixed delays: the wait after attempt n is
    schedule[n-1], and the last one repeats.
    """

    first: float = 30.0
    factor: float = 4.0
    cap: float = 6 * 3600.0
    jitter: str = "spread"
    spread: float = 0.1
    schedule: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.jitter not in JITTERS:
            raise ValueError(f"jitter must be one of {', '.join(JITTERS)}, not {self.jitter!r}")
        if not 0 <= self.spread < 1:
            raise ValueError("spread must be at least 0 and below 1")
        if self.first < 0 or self.factor < 1 or self.cap < 0 or any(step < 0 for step in self.schedule):
            raise ValueError("delays must not be negative and factor must be at least 1")

    def step(self, attempts: int) -> float:
        """The delay after `attempts` attempts, before jitter."""
        n = max(attempts, 1)
        if self.schedule:
            return min(self.schedule[min(n, len(self.schedule)) - 1], self.cap)
        # The exponent is bounded: 4 ** 1000 overflows a float long before any cap matters.
        return min(self.first * self.factor ** min(n - 1, 64), self.cap)

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the next attempt, jitter included (never above `cap`)."""
        rng = rng or random
        step = self.step(attempts)
        if self.jitter == "full":
            return rng.uniform(0, step)
        if self.jitter == "spread":
            return min(step * rng.uniform(1 - self.spread, 1 + self.spread), self.cap)
        return step


# Standard Webhooks' retry schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h (then give up: seven
# attempts in all), each moved by up to ±10%.
STANDARD_WEBHOOKS = Backoff(schedule=(5, 300, 1800, 7200, 18000, 36000), cap=36000 * 1.1, jitter="spread", spread=0.1)

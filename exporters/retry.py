"""The retry policy of an exporter queue: exponential backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter; ``max_elapsed_time`` 0 means retry forever."""

    enabled: bool = True
    initial_interval: float = 1.0
    max_interval: float = 30.0
    multiplier: float = 2.0
    randomization_factor: float = 0.5
    max_elapsed_time: float = 300.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``attempt`` (0-based), jittered."""
        base = min(self.max_interval, self.initial_interval * self.multiplier**attempt)
        spread = base * self.randomization_factor
        return max(0.0, base + (rng or random).uniform(-spread, spread))

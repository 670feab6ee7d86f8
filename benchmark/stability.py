"""Whether a series of latencies can be trusted: its spread, its modes, its drift across the run.

On a shared or throttled device the other jobs' load comes and goes: a run's latencies then
split into two groups (fast while the cores were free, slow while they were not), spread far
around their median, or creep up as the chip heats. A median of such a series is a figure of
the load as much as of the model, so petseg-bench measures again, and marks what stays unstable.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Thresholds, as ratios to the median. On an idle core a TFLite model's runs lie within a few % of
# their median: 25 % between the 10th and 90th percentile is load, not the model.
MAX_SPREAD = 0.25
# Two modes: both groups hold at least this share of the runs, their medians lie this far apart,
# and the gap between them is wide against the groups' own spread.
MIN_MODE_SHARE = 0.1
MIN_MODE_RATIO = 1.2
MIN_SEPARATION = 4.0
# Drift: the last third's median this far from the first third's.
MAX_DRIFT = 0.1
MIN_RUNS = 9  # fewer runs say nothing about their distribution
ATTEMPTS = 3  # measurements of one model before an unstable one is reported as such


def assess(times_ms: list[float] | np.ndarray) -> dict:
    """Spread, modes and drift of ``times_ms`` (in the order they were timed), and what is wrong."""
    t = np.asarray(times_ms, np.float64)
    if t.size < MIN_RUNS:
        return {"stable": None, "problems": [f"only {t.size} runs: too few to judge"]}
    median = float(np.median(t))
    p10, p90 = np.percentile(t, [10, 90])
    spread = float((p90 - p10) / median)
    third = t.size // 3
    drift = float(np.median(t[-third:]) / np.median(t[:third]) - 1)
    modes = _two_modes(t)
    problems = []
    if modes:
        problems.append(f"two modes, at {modes[0]:.2f} and {modes[1]:.2f} ms")
    if spread > MAX_SPREAD:
        problems.append(f"p10-p90 spread {100 * spread:.0f}% of the median")
    if abs(drift) > MAX_DRIFT:
        problems.append(f"drift {100 * drift:+.0f}% from the first third of the runs to the last")
    return {"stable": not problems, "problems": problems, "spread": spread, "drift": drift,
            "modes_ms": list(modes) if modes else None}


def _two_modes(t: np.ndarray) -> tuple[float, float] | None:
    """The medians of the two groups of the best split of log-latencies (1-D two-means, exact), when
    both groups are real ones: big enough, far apart, and apart beyond their own spread."""
    x = np.sort(np.log(t))
    n = x.size
    cut = _best_split(x)
    low, high = x[:cut], x[cut:]
    if min(low.size, high.size) < max(2, MIN_MODE_SHARE * n):
        return None
    ratio = float(np.exp(np.median(high) - np.median(low)))
    pooled = float(np.sqrt((low.var() * low.size + high.var() * high.size) / n)) or 1e-12
    if ratio < MIN_MODE_RATIO or (high.mean() - low.mean()) / pooled < MIN_SEPARATION:
        return None
    return float(np.exp(np.median(low))), float(np.exp(np.median(high)))


def _best_split(x: np.ndarray) -> int:
    """The index splitting sorted ``x`` into two groups with the least within-group variance."""
    n = x.size
    csum, csq = np.cumsum(x), np.cumsum(x * x)
    k = np.arange(1, n)  # the first group holds x[:k]
    left = csq[k - 1] - csum[k - 1] ** 2 / k
    right = (csq[-1] - csq[k - 1]) - (csum[-1] - csum[k - 1]) ** 2 / (n - k)
    return int(k[np.argmin(left + right)])


def steady_times(measure: Callable[[], list[float]], attempts: int = ATTEMPTS) -> tuple[list[float], dict]:
    """Time with ``measure`` until a series is stable, at most ``attempts`` times; the stable series,
    else the one with the least spread, and its assessment (with the attempts it took)."""
    tried = []
    for _ in range(attempts):
        times = measure()
        verdict = assess(times)
        tried.append((times, verdict))
        if verdict["stable"] is not False:
            break
    times, verdict = min(tried, key=lambda tv: (tv[1]["stable"] is False, tv[1].get("spread", 0.0)))
    return times, {**verdict, "attempts": len(tried)}

"""The monitoring indicators of the district implementation model, defined once.

Each indicator has its name, its formula in words (the page shows it beside
the value, `docs/indicators.md` quotes it, and a test keeps the two the same)
and the one function that computes it. The dashboard, its exports and the API
all call these functions; none computes a rate of its own.
"""

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Indicator:
    key: str
    name: str
    formula: str
    unit: str  # "percent" or "days"

    def describe(self, value: float | None) -> str:
        if value is None:
            return "—"
        if self.unit == "percent":
            return f"{value:.1f}%"
        return f"{value:g} day{'' if value == 1 else 's'}"


COVERAGE_RATE = Indicator(
    key="coverage_rate",
    name="Coverage rate",
    formula="eligible households enrolled in the programme ÷ eligible households × 100",
    unit="percent",
)
GAP_RATE = Indicator(
    key="gap_rate",
    name="Gap rate",
    formula="eligible households not enrolled in the programme ÷ eligible households × 100",
    unit="percent",
)
REFERRAL_COMPLETION_RATE = Indicator(
    key="referral_completion_rate",
    name="Referral completion rate",
    formula="referrals sent in the period and now completed ÷ referrals sent in the period × 100",
    unit="percent",
)
MEDIAN_REFERRAL_TIME = Indicator(
    key="median_referral_time",
    name="Median referral time",
    formula="median of the days from sending to acceptance, over referrals accepted in the period",
    unit="days",
)
PAYMENT_SUCCESS_RATE = Indicator(
    key="payment_success_rate",
    name="Payment success rate",
    formula="payments paid ÷ payments paid, failed or unclaimed, in the cycles of the period × 100",
    unit="percent",
)
COMPLEMENTARY_SHARE = Indicator(
    key="complementary_share",
    name="Households with two or more programmes",
    formula="households enrolled in at least two programmes ÷ households enrolled in at least one × 100",
    unit="percent",
)

INDICATORS = (
    COVERAGE_RATE,
    GAP_RATE,
    REFERRAL_COMPLETION_RATE,
    MEDIAN_REFERRAL_TIME,
    PAYMENT_SUCCESS_RATE,
    COMPLEMENTARY_SHARE,
)


def percent(numerator, denominator) -> float | None:
    """A share in percent to one decimal (of counts, or of money); None when there is nothing to divide
    by (not zero: unknown)."""
    if not denominator:
        return None
    return round(float(100 * numerator / denominator), 1)


def coverage_rate(*, eligible: int, gap: int) -> float | None:
    return percent(eligible - gap, eligible)


def gap_rate(*, eligible: int, gap: int) -> float | None:
    return percent(gap, eligible)


def referral_completion_rate(*, completed: int, sent: int) -> float | None:
    return percent(completed, sent)


def median_days(histogram: Mapping[int, int]) -> float | None:
    """The median of a histogram {days: how many}; the mean of the two middle values for an even count."""
    total = sum(histogram.values())
    if not total:
        return None
    middle = ((total - 1) // 2, total // 2)  # zero-based positions of the middle value(s)
    found: list[int] = []
    seen = 0
    for days in sorted(histogram):
        count = histogram[days]
        for position in middle:
            if seen <= position < seen + count:
                found.append(days)
        seen += count
        if len(found) == 2:
            break
    value = sum(found) / 2
    return int(value) if value == int(value) else value


def median_referral_time(histogram: Mapping[int, int]) -> float | None:
    return median_days(histogram)


def payment_success_rate(*, paid: int, failed: int, unclaimed: int) -> float | None:
    return percent(paid, paid + failed + unclaimed)


def complementary_share(*, two_or_more: int, one_or_more: int) -> float | None:
    return percent(two_or_more, one_or_more)


__all__ = [
    "COMPLEMENTARY_SHARE",
    "COVERAGE_RATE",
    "GAP_RATE",
    "INDICATORS",
    "MEDIAN_REFERRAL_TIME",
    "PAYMENT_SUCCESS_RATE",
    "REFERRAL_COMPLETION_RATE",
    "Indicator",
    "complementary_share",
    "coverage_rate",
    "gap_rate",
    "median_days",
    "median_referral_time",
    "payment_success_rate",
    "percent",
    "referral_completion_rate",
]

"""The monitoring indicators: one definition each, in code, with its formula in
docs/indicators.md word for word."""

from pathlib import Path

import pytest

from .. import indicators as ind

DOCS = Path(__file__).resolve().parents[2] / "docs" / "indicators.md"


@pytest.mark.parametrize(
    ("histogram", "median"),
    [
        ({}, None),
        ({4: 1}, 4),
        ({1: 1, 3: 1}, 2),
        ({1: 1, 2: 1}, 1.5),
        ({0: 5, 30: 1}, 0),
        ({2: 2, 9: 3}, 9),
        ({1: 1, 2: 1, 10: 2}, 6),
    ],
)
def test_median_days_reads_the_middle_of_a_histogram(histogram, median):
    assert ind.median_days(histogram) == median


def test_rates_are_unknown_without_a_denominator_not_zero():
    assert ind.coverage_rate(eligible=0, gap=0) is None
    assert ind.payment_success_rate(paid=0, failed=0, unclaimed=0) is None
    assert ind.referral_completion_rate(completed=0, sent=0) is None


def test_coverage_and_gap_rates_add_up_to_the_whole():
    assert ind.coverage_rate(eligible=8, gap=2) == 75.0
    assert ind.gap_rate(eligible=8, gap=2) == 25.0


def test_payment_success_leaves_pending_payments_out():
    assert ind.payment_success_rate(paid=9, failed=1, unclaimed=0) == 90.0


def test_complementary_share_is_of_enrolled_households():
    assert ind.complementary_share(two_or_more=1, one_or_more=3) == 33.3


def test_every_indicator_is_documented_with_its_formula_word_for_word():
    docs = DOCS.read_text()
    for indicator in ind.INDICATORS:
        assert f"## {indicator.name}" in docs, indicator.key
        assert indicator.formula in docs, indicator.key
        assert f"`{indicator.key}`" in docs, indicator.key


def test_values_are_written_with_their_unit():
    assert ind.COVERAGE_RATE.describe(12.34) == "12.3%"
    assert ind.MEDIAN_REFERRAL_TIME.describe(1) == "1 day"
    assert ind.MEDIAN_REFERRAL_TIME.describe(2.5) == "2.5 days"
    assert ind.GAP_RATE.describe(None) == "—"

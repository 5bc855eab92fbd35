"""The figures added up by the database: medians of days read from the summaries' histograms, the
payments table that shows each programme's last cycles (every cycle a click away and in the export),
and a busy year that costs the page no more queries than a quiet one."""

import csv
import io
import random
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry.tests.factories import make_village

from ..indicators import median_days
from ..models import DistrictRefresh, Group, Subject, Tally
from ..selectors import TOTAL, DashboardQuery, Period, Split, add_months, tally_medians
from ..summaries import month_of

pytestmark = pytest.mark.django_db

DASHBOARD = "/dashboard/"


@pytest.fixture
def wards(samfya, samfya_village):
    return [samfya_village.parent, make_village(samfya, "2").parent]


@pytest.fixture
def counted_now(samfya):
    """The district counted (its summaries are the rows a test writes): the page asks for no refresh."""
    return DistrictRefresh.objects.create(district=samfya, refreshed_at=timezone.now())


def tallies(district, subject, rows: list[dict]) -> None:
    """Summary rows as the job writes them: each by ward (and kind of household), and added up for the district."""
    made = []
    whole: dict[tuple, dict] = {}
    for row in rows:
        made.append(Tally(district=district, subject=subject, **row))
        if row.get("group", "") and row.get("female_headed"):
            continue  # groups of people are kept by ward only, not by kind of household
        key = tuple(sorted((k, v) for k, v in row.items() if k not in ("ward", "female_headed", "count", "timely")))
        cell = whole.setdefault(key, {**dict(key), "count": 0, "timely": 0})
        cell["count"] += row.get("count", 0)
        cell["timely"] += row.get("timely", 0)
    made += [Tally(district=district, subject=subject, whole_district=True, **cell) for cell in whole.values()]
    Tally.objects.bulk_create(made)


def test_the_database_finds_the_median_days_the_histogram_gives_for_every_part_of_a_split(samfya, wards):
    draw = random.Random(7)
    month = month_of(timezone.localdate())
    rows = [
        {
            "category": category,
            "ward": ward,
            "female_headed": female_headed,
            "group": group,
            "month": month,
            "days": days,
            "count": draw.randint(1, 4),
        }
        for category in ("payment", "eligibility")
        for ward in wards
        for female_headed in (True, False)
        for group in ("", Group.FEMALE, Group.AGE_0_4)
        if not (group and female_headed)
        for days in draw.sample(range(40), draw.randint(1, 6))
    ]
    # An even count whose two middle days differ: the median is their mean, as `median_days` takes it.
    rows += [{"category": "other", "ward": wards[0], "month": month, "days": days, "count": 1} for days in (2, 5)]
    tallies(samfya, Subject.RESOLUTIONS, rows)

    def expected(split: str) -> dict:
        histograms: dict = {}
        for row in rows:
            if split in Split.GROUPS:
                parts = [row.get("group", "") or TOTAL] if row.get("group", "") in ("", *Split.GROUPS[split]) else []
            elif row.get("group", ""):
                parts = []
            elif split == Split.WARD:
                parts = [row["ward"].pk, TOTAL]
            elif split == Split.FEMALE_HEADED:
                parts = [row.get("female_headed", False), TOTAL]
            else:
                parts = [TOTAL]
            for key in ((row["category"],), ()):
                for part in parts:
                    histogram = histograms.setdefault(key, {}).setdefault(part, {})
                    histogram[row["days"]] = histogram.get(row["days"], 0) + row["count"]
        return {key: {part: median_days(h) for part, h in by_part.items()} for key, by_part in histograms.items()}

    for split in (Split.NONE, Split.WARD, Split.FEMALE_HEADED, Split.SEX, Split.AGE):
        query = DashboardQuery(districts=[samfya], split=split)
        by_category, overall = tally_medians(query, Subject.RESOLUTIONS, groupings=(("category",), ()))
        wanted = expected(split)
        assert by_category == {key: value for key, value in wanted.items() if key}, split
        assert overall == {(): wanted[()]}, split
    assert by_category[("other",)] == {TOTAL: 3.5}


def payment_cycles(district, programme, wards, months) -> None:
    """A cycle a month: in each ward, female-headed or not, ten paid on the third day and one failed."""
    rows = []
    for month in months:
        for ward in wards:
            for female_headed in (True, False):
                common = {"programme": programme, "month": month, "ward": ward, "female_headed": female_headed}
                rows.append({**common, "state": "paid", "days": 3, "count": 10, "timely": 10})
                rows.append({**common, "state": "failed", "count": 1})
    tallies(district, Subject.PAYMENTS, rows)


def test_the_payments_table_shows_each_programmes_last_cycles_and_every_cycle_is_a_click_and_an_export_away(
    client, committee_samfya, samfya, wards, programme, counted_now
):
    this_month = month_of(timezone.localdate())
    months = [add_months(this_month, -n) for n in range(5, -1, -1)]
    payment_cycles(samfya, programme, wards, months)
    client.force_login(committee_samfya)

    page = client.get(DASHBOARD, {"split": "ward"}).context["board"].tables()

    cycles = page["payments"]
    shown = [row.cells[1].value for row in cycles.rows if not row.is_part]
    assert shown == [f"{month:%b %Y}" for month in months[-3:]]
    assert len(cycles.rows) == 3 * 3  # each cycle's whole and its two wards
    assert parse_qs(urlparse(cycles.more_href).query)["cycles"] == ["all"]
    by_programme = page["payments_by_programme"]
    whole = by_programme.rows[0]
    assert [whole.cells[0].value, whole.cells[2].value, whole.cells[4].value] == ["Programme SCT", 6 * 44, 6 * 40]
    assert [row.cells[2].value for row in by_programme.rows[1:]] == [6 * 22, 6 * 22]

    every = client.get(DASHBOARD, {"split": "ward", "cycles": "all"}).context["board"].tables()["payments"]
    assert [row.cells[1].value for row in every.rows if not row.is_part] == [f"{m:%b %Y}" for m in months]
    assert not every.more_href

    export = client.get("/dashboard/export/payments.csv", {"split": "ward"})
    lines = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    header_at = lines.index([]) + 1
    assert lines[header_at][:3] == ["Programme", "Cycle", "Ward"]
    assert len(lines[header_at + 1 :]) == 6 * 3


def test_a_busy_year_split_by_ward_asks_the_database_no_more_than_a_quiet_month(
    client, committee_samfya, samfya, wards, programme, counted_now
):
    this_month = month_of(timezone.localdate())
    payment_cycles(samfya, programme, wards, [this_month])
    client.force_login(committee_samfya)
    client.get(DASHBOARD)  # the session and the user are loaded once
    with CaptureQueriesContext(connection) as quiet:
        client.get(DASHBOARD, {"split": "ward"})
    payment_cycles(samfya, programme, wards, [add_months(this_month, -n) for n in range(1, 12)])

    with CaptureQueriesContext(connection) as busy:
        response = client.get(DASHBOARD, {"split": "ward"})

    assert len(response.context["board"].tables()["payments"].rows) == 3 * 3
    assert 0 < len(busy) == len(quiet) <= 30


def test_a_period_of_one_month_reads_its_medians_too(samfya, wards):
    month = month_of(timezone.localdate())
    tallies(samfya, Subject.ACCEPTANCES, [{"ward": wards[0], "month": month, "days": 4, "count": 3}])

    (overall,) = tally_medians(
        DashboardQuery(districts=[samfya], period=Period(month, month)), Subject.ACCEPTANCES, groupings=((),)
    )

    assert overall == {(): {TOTAL: 4}}

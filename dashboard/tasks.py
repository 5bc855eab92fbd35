"""Celery tasks that keep the dashboard's summaries current: thin, by id, safe to run twice."""

from celery import shared_task


@shared_task(acks_late=True)
def summaries_refresh() -> int:
    """Beat: queue a refresh of every district, the one refreshed longest ago first. Returns how many."""
    from .summaries import summary_district_ids

    ids = summary_district_ids()
    for district_id in ids:
        summaries_refresh_district.delay(district_id)
    return len(ids)


@shared_task(acks_late=True)
def summaries_refresh_district(district_id: int, today: str | None = None) -> dict:
    """Rebuild one district's summaries; a district already being rebuilt by another worker is skipped.

    `today` (ISO date) counts ages and overdue at another day, for a re-run; by default the local date.
    """
    import datetime

    from .summaries import summaries_refresh_district as refresh

    report = refresh(district_id=district_id, today=datetime.date.fromisoformat(today) if today else None)
    if report is None:
        return {"district": district_id, "skipped": "a refresh of this district is running"}
    return {"district": district_id, "households": report.households, "rows": report.tallies, "seconds": report.seconds}

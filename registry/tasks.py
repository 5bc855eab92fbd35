"""Registry background work. Tasks are thin: they take ids, call a service, and are safe to run twice."""

from celery import shared_task

from .imports import import_job_run


@shared_task(name="registry.import_run")
def import_run(job_id: int) -> str:
    """Run a pending import job; a job already started or finished is left as it is."""
    job = import_job_run(job_id=job_id)
    return job.status if job is not None else "skipped: not pending"

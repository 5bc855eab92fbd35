"""Registry background work. Tasks are thin: they take ids, call a service, and are safe to run twice."""

from celery import shared_task

from .imports import import_job_run
from .imports import import_jobs_resume as resume_imports


@shared_task(name="registry.import_run")
def import_run(job_id: int) -> str:
    """Run a pending import job; a job already started or finished is left as it is."""
    job = import_job_run(job_id=job_id)
    return job.status if job is not None else "skipped: not pending"


@shared_task(name="registry.import_jobs_resume", acks_late=True)
def import_jobs_resume() -> list[int]:
    """Beat, every five minutes, and each worker as it connects: imports whose worker died are queued again."""
    return resume_imports()

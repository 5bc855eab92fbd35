"""`Idempotency-Key` on API writes: a repeat gets the first answer, another request with the same key is
refused, a refused request keeps nothing, keys are per user and forgotten after a day.

(Two copies of a request at the same moment: tests/test_double_submissions.py.)"""

import datetime
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from grievances.services import grievance_register
from referrals.tests.makers import make_household
from registry.models import Household
from spf.idempotency.models import FormSubmission, IdempotencyKey
from spf.idempotency.services import FORM_SUBMISSION_TTL, IDEMPOTENCY_KEY_TTL, idempotency_purge
from spf.idempotency.tasks import idempotency_purge_task

pytestmark = pytest.mark.django_db

HOUSEHOLDS = "/api/v1/households/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def household(first_name: str = "Chanda", *, village: str = "SAM-W1-V1", **extra) -> dict:
    member = {"first_name": first_name, "last_name": "Bwalya", "sex": "F", "date_of_birth": "1984-06-02"}
    return {"village": village, "members": [{**member, "relationship": "head"}], **extra}


def register(client, body: dict, key: str):
    return client.post(HOUSEHOLDS, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def test_the_same_key_for_another_request_is_refused_and_nothing_more_is_done(samfya_officer, samfya_village):
    client = api(samfya_officer)
    assert register(client, household("Chanda"), "desk-7").status_code == 201

    error = error_of(register(client, household("Bupe"), "desk-7"), 422)

    assert error["code"] == "idempotency_key_reused" and "Use a new key" in error["message"]
    assert error["fields"] == {"Idempotency-Key": ["Already used for another request."]}
    assert list(Household.objects.values_list("head__first_name", flat=True)) == ["Chanda"]


def test_a_json_body_with_its_keys_in_another_order_is_the_same_request(samfya_officer, samfya_village):
    client = api(samfya_officer)
    body = household()
    first = client.post(HOUSEHOLDS, json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    again = client.post(
        HOUSEHOLDS,
        json.dumps(body, sort_keys=True, indent=2),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert Household.objects.count() == 1


def test_a_refused_request_keeps_nothing_so_the_corrected_one_goes_through_with_its_key(samfya_officer, samfya_village):
    client = api(samfya_officer)
    refused = register(client, household(registration_date="2999-01-01"), "desk-8")
    assert refused.status_code == 400 and not IdempotencyKey.objects.exists()

    accepted = register(client, household(), "desk-8")

    assert accepted.status_code == 201 and "Idempotent-Replayed" not in accepted
    assert Household.objects.count() == 1


def test_keys_belong_to_their_user(samfya_officer, lunga_officer, samfya_village, lunga_village):
    samfya = register(api(samfya_officer), household(), "morning-1")
    lunga = register(api(lunga_officer), household(village="LUN-W1-V1"), "morning-1")

    assert samfya.status_code == lunga.status_code == 201
    assert {samfya.json()["number"], lunga.json()["number"]} == {"SAM-000001", "LUN-000001"}


def test_a_key_older_than_a_day_is_forgotten(samfya_officer, samfya_village):
    client = api(samfya_officer)
    body = household(confirm_duplicates=True)
    assert register(client, body, "desk-9").status_code == 201
    IdempotencyKey.objects.update(created_at=timezone.now() - IDEMPOTENCY_KEY_TTL - datetime.timedelta(minutes=1))

    again = register(client, body, "desk-9")

    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert Household.objects.count() == 2


def test_a_key_longer_than_the_column_is_refused(samfya_officer, samfya_village):
    error = error_of(register(api(samfya_officer), household(), "k" * 256), 400)
    assert error["code"] == "validation_error" and "Idempotency-Key" in error["fields"]
    assert not Household.objects.exists()


def test_a_request_without_credentials_is_answered_401_whatever_its_key(samfya_village):
    assert register(APIClient(), household(), "anonymous-1").status_code == 401
    assert not IdempotencyKey.objects.exists()


def test_the_database_keeps_one_row_per_user_and_key(samfya_officer):
    IdempotencyKey.objects.create(user=samfya_officer, key="k", method="POST", path="/", request_fingerprint="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        IdempotencyKey.objects.create(user=samfya_officer, key="k", method="POST", path="/x", request_fingerprint="b")


def test_a_browser_upload_with_a_key_reaches_the_view_whole(samfya_officer, samfya_village):
    """A session client's upload: its CSRF check reads the form, which must not cost the view its file."""
    grievance = grievance_register(
        acting_user=samfya_officer,
        category="other",
        description="The queue is too long.",
        household=make_household(officer=samfya_officer, village=samfya_village),
        complainant_name="Mary Mwansa",
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(samfya_officer)
    client.cookies["csrftoken"] = "c" * 32
    url = f"/api/v1/grievances/{grievance.pk}/attachments/"

    content = b"%PDF-1.4 the headman's letter"

    def upload():
        document = SimpleUploadedFile("letter.pdf", content, content_type="application/pdf")
        return client.post(
            url, {"attachment": document, "description": "Letter"}, HTTP_X_CSRFTOKEN="c" * 32, HTTP_IDEMPOTENCY_KEY="u1"
        )

    first, again = upload(), upload()

    assert first.status_code == again.status_code == 201, first.content
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    attachment = grievance.attachments.get()
    assert attachment.file.read() == content


def test_the_hourly_purge_forgets_keys_after_a_day_and_form_tokens_after_a_week(samfya_officer):
    now = timezone.now()
    for age in (datetime.timedelta(hours=1), IDEMPOTENCY_KEY_TTL + datetime.timedelta(hours=1)):
        IdempotencyKey.objects.create(
            user=samfya_officer, key=f"k-{age}", method="POST", path="/", request_fingerprint="a", created_at=now - age
        )
    for age in (IDEMPOTENCY_KEY_TTL + datetime.timedelta(hours=1), FORM_SUBMISSION_TTL + datetime.timedelta(hours=1)):
        FormSubmission.objects.create(
            token=f"00000000-0000-0000-0000-{age.days:012d}", user=samfya_officer, action="x", created_at=now - age
        )

    assert idempotency_purge(now=now) == {"idempotency_keys": 1, "form_submissions": 1}
    assert IdempotencyKey.objects.count() == FormSubmission.objects.count() == 1
    assert idempotency_purge_task.apply().get() == {"idempotency_keys": 0, "form_submissions": 0}


def test_the_purge_runs_on_the_beat_schedule(settings):
    assert any(entry["task"] == idempotency_purge_task.name for entry in settings.CELERY_BEAT_SCHEDULE.values())


def test_a_browser_write_without_its_csrf_token_is_still_refused_for_it_with_a_key(samfya_officer, samfya_village):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(samfya_officer)
    response = client.post(HOUSEHOLDS, household(), format="json", HTTP_IDEMPOTENCY_KEY="no-csrf")
    assert error_of(response, 403)["message"].startswith("CSRF")
    assert not Household.objects.exists() and not IdempotencyKey.objects.exists()

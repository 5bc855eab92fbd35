"""The registry announces changed households after commit, once, and never for a rolled-back write."""

import pytest
from django.db import transaction

from registry.signals import announce_households_changed, households_changed


@pytest.fixture
def heard():
    calls = []

    def listener(sender, household_ids, district_ids, **kwargs):
        calls.append((household_ids, district_ids))

    households_changed.connect(listener)
    yield calls
    households_changed.disconnect(listener)


@pytest.mark.django_db(transaction=True)
def test_many_writes_in_one_transaction_are_announced_once_after_commit(heard, samfya):
    with transaction.atomic():
        announce_households_changed([1])
        announce_households_changed([2, 1], district_ids=[samfya.pk])
        assert heard == []
    assert heard == [([1, 2], [samfya.pk])]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_write_is_never_announced(heard):
    with pytest.raises(RuntimeError), transaction.atomic():
        # A district that the rolled-back transaction itself created, say: it never existed.
        announce_households_changed([1], district_ids=[987654])
        raise RuntimeError("the write failed")
    with transaction.atomic():
        announce_households_changed([2])
    assert heard == [([2], [])]

import datetime

import pytest
from django.core.exceptions import ValidationError

from registry.models import ChangeAction, ChangeEntry
from registry.services import DuplicateSuspected, MemberInput, household_register


def _mary(**extra):
    values = {"first_name": "Mary", "last_name": "Mwansa", "sex": "F", "date_of_birth": datetime.date(1980, 5, 17),
              "relationship": "head"}
    values.update(extra)
    return MemberInput(values=values)


def test_registration_gives_a_district_number_and_records_history(samfya_officer, samfya_village):
    household = household_register(acting_user=samfya_officer, village=samfya_village, members=[_mary()])
    assert household.number == "SAM-000001"
    assert household.head.first_name == "Mary"
    actions = set(ChangeEntry.objects.filter(household=household).values_list("action", flat=True))
    assert actions == {ChangeAction.CREATE}
    assert ChangeEntry.objects.filter(household=household).count() == 2


def test_a_spelling_variant_in_the_same_village_is_suspected(samfya_officer, samfya_village):
    household_register(acting_user=samfya_officer, village=samfya_village, members=[_mary()])
    with pytest.raises(DuplicateSuspected) as raised:
        household_register(acting_user=samfya_officer, village=samfya_village, members=[_mary(last_name="Mwanza")])
    assert raised.value.candidates[0].member.last_name == "Mwansa"
    household = household_register(acting_user=samfya_officer, village=samfya_village,
                                   members=[_mary(last_name="Mwanza")], duplicates_confirmed=True)
    assert household.number == "SAM-000002"


def test_a_bad_national_id_is_named_with_its_member_and_field(samfya_officer, samfya_village):
    with pytest.raises(ValidationError) as raised:
        household_register(acting_user=samfya_officer, village=samfya_village, members=[_mary(national_id="12/34")])
    assert "members.0.national_id" in raised.value.message_dict

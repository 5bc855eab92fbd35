"""The catalogue and eligibility as JSON. Read shapes only: the one write-like
call (a draft's preview) changes nothing, and its checks are the service's."""

from rest_framework import serializers

from ..models import Agency, EligibilityResult, Programme, ProgrammeDistrict

# Choice fields are plain strings with their label beside them: several models
# name a field `kind` or `status` with different choices, and one enum name per
# field would collide in the schema.


def _values(choices) -> str:
    return ", ".join(f"`{value}`" for value, _ in choices)


class AgencySerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True, help_text=_values(Agency._meta.get_field("kind").choices))
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = Agency
        fields = [
            "code",
            "name",
            "kind",
            "kind_label",
            "focal_point_name",
            "focal_point_title",
            "email",
            "phone",
            "address",
            "active",
        ]


class AgencyBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Agency
        fields = ["code", "name"]


class CoverageSerializer(serializers.ModelSerializer):
    district = serializers.CharField(source="district.code", read_only=True, help_text="District code, e.g. SAM.")
    district_name = serializers.CharField(source="district.name", read_only=True)

    class Meta:
        model = ProgrammeDistrict
        fields = ["district", "district_name", "capacity", "budget"]


class RulesSerializer(serializers.Serializer):
    version = serializers.IntegerField(source="number")
    eligibility_rule = serializers.CharField()
    benefit_formula = serializers.CharField(help_text="Empty when the programme gives no amount.")
    since = serializers.DateTimeField(source="created_at")


class ProgrammeSerializer(serializers.ModelSerializer):
    agency = AgencyBriefSerializer(read_only=True)
    kind = serializers.CharField(read_only=True, help_text=_values(Programme._meta.get_field("kind").choices))
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    target_unit = serializers.CharField(
        read_only=True, help_text=_values(Programme._meta.get_field("target_unit").choices)
    )
    status = serializers.CharField(read_only=True, help_text=_values(Programme._meta.get_field("status").choices))
    frequency = serializers.CharField(read_only=True, help_text=_values(Programme._meta.get_field("frequency").choices))
    frequency_label = serializers.CharField(source="get_frequency_display", read_only=True)
    enrolment_mode = serializers.CharField(
        read_only=True, help_text=_values(Programme._meta.get_field("enrolment_mode").choices)
    )
    documents = serializers.ListField(child=serializers.CharField(), read_only=True)
    districts = CoverageSerializer(source="coverage", many=True, read_only=True)
    rules = RulesSerializer(source="current_version", read_only=True, allow_null=True)

    class Meta:
        model = Programme
        fields = [
            "code",
            "name",
            "agency",
            "description",
            "kind",
            "kind_label",
            "target_unit",
            "status",
            "frequency",
            "frequency_label",
            "currency",
            "enrolment_mode",
            "documents",
            "districts",
            "rules",
        ]


class ProgrammeBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Programme
        fields = ["code", "name", "currency"]


class ReasonSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="The clause as the rule writes it.")
    value = serializers.JSONField(help_text="What the clause gave for this household (null: not known).")
    status = serializers.CharField(help_text="`true`, `false` or `unknown`.")
    depth = serializers.IntegerField(required=False, help_text="Nesting under && and ||, 0 at the top.")
    member = serializers.CharField(required=False, help_text="For a rule on each member: which member.")


class EligibilityResultSerializer(serializers.ModelSerializer):
    programme = ProgrammeBriefSerializer(read_only=True)
    outcome = serializers.CharField(read_only=True, help_text="`eligible`, `needs_information` or `not_eligible`.")
    outcome_label = serializers.CharField(source="get_outcome_display", read_only=True)
    frequency = serializers.CharField(source="programme.frequency", read_only=True)
    reasons = ReasonSerializer(many=True, read_only=True)
    missing = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The information to collect, in plain words."
    )
    eligible_members = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    rule_version = serializers.IntegerField(source="rule_version.number", read_only=True)

    class Meta:
        model = EligibilityResult
        fields = [
            "programme",
            "outcome",
            "outcome_label",
            "amount",
            "frequency",
            "reasons",
            "missing",
            "eligible_members",
            "rule_version",
            "evaluated_at",
            "outcome_since",
        ]


class HouseholdEligibilitySerializer(serializers.Serializer):
    household = serializers.IntegerField(help_text="The household's id.")
    number = serializers.CharField()
    results = EligibilityResultSerializer(many=True)


class PreviewRequestSerializer(serializers.Serializer):
    eligibility_rule = serializers.CharField(trim_whitespace=False, allow_blank=True)
    benefit_formula = serializers.CharField(trim_whitespace=False, allow_blank=True, required=False, default="")
    reference_date = serializers.DateField(required=False, help_text="Ages are counted at this day; today by default.")


class DistrictPreviewSerializer(serializers.Serializer):
    district = serializers.CharField(source="district.code")
    district_name = serializers.CharField(source="district.name")
    households = serializers.IntegerField()
    eligible_now = serializers.IntegerField()
    eligible_draft = serializers.IntegerField()
    needs_information_draft = serializers.IntegerField()
    would_change = serializers.IntegerField()


class PreviewSerializer(serializers.Serializer):
    programme = serializers.CharField()
    districts = DistrictPreviewSerializer(many=True)

"""The rules an extensible attribute definition must keep.

A definition's key is written by ministry staff into eligibility rules
(`household.<key>`, `m.<key>`), so it must be an identifier the rule language
reads and must not shadow a core field. Once households hold values for it,
its meaning is fixed: changing its type, key or entity, or dropping an allowed
value still in use, would leave values that no longer validate.
"""

import re

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.db.models.fields.json import KeyTransform

from .models import AttributeDefinition, AttributeEntity, AttributeType, Household, Member

RULE_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")

ENTITY_MODELS = {AttributeEntity.HOUSEHOLD: Household, AttributeEntity.MEMBER: Member}


def core_field_names(entity: str) -> set[str]:
    """Names a rule may already mean on this entity: its fields, relations and computed properties."""
    model = ENTITY_MODELS[AttributeEntity(entity)]
    found: set[str] = set()
    for field in model._meta.get_fields():
        found.add(field.name)
        attname = getattr(field, "attname", None)
        if attname:
            found.add(attname)
    for cls in model.__mro__:
        found.update(
            name for name, value in vars(cls).items() if isinstance(value, property) and not name.startswith("_")
        )
    return found


def attribute_value_holders(*, entity: str, key: str) -> QuerySet:
    """The households or members holding a value for `key`."""
    return ENTITY_MODELS[AttributeEntity(entity)].objects.filter(attributes__has_key=key)


def attribute_definition_validate(*, definition: AttributeDefinition) -> None:
    """Raise ValidationError, by field, if `definition` may not be saved as it stands."""
    errors: dict[str, list[str]] = {}
    key = definition.key or ""
    entity = definition.entity

    if not RULE_IDENTIFIER.match(key):
        errors.setdefault("key", []).append(
            "The key is used in eligibility rules: start with a lower-case letter, then lower-case letters, "
            "digits or _ only (for example water_source)."
        )
    elif entity in ENTITY_MODELS and key in core_field_names(entity):
        errors.setdefault("key", []).append(
            f"'{key}' is already a core {entity} field; choose another key so rules stay unambiguous."
        )

    values = definition.allowed_values
    if definition.type == AttributeType.CHOICE:
        if not isinstance(values, list) or not values:
            errors.setdefault("allowed_values", []).append("Give the allowed values of a 'one of a list' attribute.")
        elif any(not isinstance(v, str) or not v.strip() for v in values):
            errors.setdefault("allowed_values", []).append("Each allowed value must be non-empty text.")
        elif len(set(values)) != len(values):
            errors.setdefault("allowed_values", []).append("An allowed value is listed twice.")
    elif values:
        errors.setdefault("allowed_values", []).append(
            f"Only a 'one of a list' attribute has allowed values; a {definition.get_type_display().lower()} "
            "attribute must leave them empty."
        )

    if definition.pk:
        errors_in_use = _changes_refused_in_use(definition)
        for field, messages in errors_in_use.items():
            errors.setdefault(field, []).extend(messages)

    if errors:
        raise ValidationError(errors)


def _changes_refused_in_use(definition: AttributeDefinition) -> dict[str, list[str]]:
    saved = AttributeDefinition.objects.filter(pk=definition.pk).first()
    if saved is None:
        return {}
    holders = attribute_value_holders(entity=saved.entity, key=saved.key)
    changed_meaning = saved.type != definition.type or saved.key != definition.key or saved.entity != definition.entity
    removed = []
    if saved.type == AttributeType.CHOICE and definition.type == AttributeType.CHOICE:
        removed = [v for v in saved.allowed_values if v not in (definition.allowed_values or [])]
    if not changed_meaning and not removed:
        return {}
    count = holders.count()
    if not count:
        return {}
    plural = "s" if count != 1 else ""
    who = f"{count} {saved.entity}{plural} already hold{'' if plural else 's'} a value for '{saved.key}'"
    errors: dict[str, list[str]] = {}
    if saved.type != definition.type:
        errors["type"] = [
            f"{who}; its type cannot change from {saved.get_type_display().lower()} to "
            f"{definition.get_type_display().lower()}. Define a new attribute and retire this one instead."
        ]
    if saved.key != definition.key:
        errors["key"] = [f"{who}; its key cannot change. Define a new attribute and retire this one instead."]
    if saved.entity != definition.entity:
        errors["entity"] = [f"{who}; it cannot move to another kind of record."]
    if removed and not changed_meaning:
        still_held = sorted(
            set(
                holders.annotate(held=KeyTransform(saved.key, "attributes"))
                .filter(held__in=removed)
                .values_list("held", flat=True)
            )
        )
        if still_held:
            errors["allowed_values"] = [f"These values are still held and cannot be removed: {', '.join(still_held)}."]
    return errors


def attribute_definition_ensure(
    *, entity: str, key: str, label: str, type: str, allowed_values=(), required: bool = False, help_text: str = ""
) -> AttributeDefinition:
    """Create a definition if it does not exist (configuration loaders, the demo); an existing one is left as staff set it."""
    definition = AttributeDefinition.objects.filter(entity=entity, key=key).first()
    if definition is not None:
        return definition
    definition = AttributeDefinition(
        entity=entity,
        key=key,
        label=label,
        type=type,
        allowed_values=list(allowed_values),
        required=required,
        help_text=help_text,
    )
    definition.full_clean()
    definition.save()
    return definition

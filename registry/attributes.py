"""Validation of extensible attribute values against their definitions."""

import datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

from .models import AttributeDefinition, AttributeType

TRUE_WORDS = {"true", "yes", "y", "1"}
FALSE_WORDS = {"false", "no", "n", "0"}


def active_definitions(entity: str) -> dict[str, AttributeDefinition]:
    return {d.key: d for d in AttributeDefinition.objects.filter(entity=entity, active=True)}


def coerce_value(definition: AttributeDefinition, raw):
    """The value in its JSON form, or ValueError with a message for a person."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    kind = definition.type
    if kind == AttributeType.TEXT:
        return str(raw).strip()
    if kind == AttributeType.INTEGER:
        if isinstance(raw, bool):
            raise ValueError("must be a whole number")
        try:
            number = Decimal(str(raw).strip())
        except InvalidOperation:
            raise ValueError("must be a whole number") from None
        if number != number.to_integral_value():
            raise ValueError("must be a whole number")
        return int(number)
    if kind == AttributeType.DECIMAL:
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        try:
            return str(Decimal(str(raw).strip()))
        except InvalidOperation:
            raise ValueError("must be a number") from None
    if kind == AttributeType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError("must be yes or no")
    if kind == AttributeType.DATE:
        if isinstance(raw, datetime.datetime):
            return raw.date().isoformat()
        if isinstance(raw, datetime.date):
            return raw.isoformat()
        try:
            return datetime.date.fromisoformat(str(raw).strip()).isoformat()
        except ValueError:
            raise ValueError("must be a date written YYYY-MM-DD") from None
    if kind == AttributeType.CHOICE:
        value = str(raw).strip()
        allowed = [str(v) for v in definition.allowed_values]
        if value not in allowed:
            raise ValueError(f"must be one of: {', '.join(allowed)}")
        return value
    raise ValueError(f"has an unknown type {kind!r}")


def clean_attributes(
    entity: str,
    values: dict | None,
    *,
    existing: dict | None = None,
    field_prefix: str = "attributes",
    definitions: dict[str, AttributeDefinition] | None = None,
) -> dict:
    """Validate `values` (merged over `existing`) against the active definitions.

    Raises ValidationError naming each bad field as `attributes.<key>`. A bulk
    caller (the import) passes `definitions` read once, instead of a query per row.
    """
    if definitions is None:
        definitions = active_definitions(entity)
    merged = dict(existing or {})
    errors: dict[str, list[str]] = {}
    for key, raw in (values or {}).items():
        definition = definitions.get(key)
        if definition is None:
            errors[f"{field_prefix}.{key}"] = [f"'{key}' is not a defined {entity} attribute."]
            continue
        try:
            value = coerce_value(definition, raw)
        except ValueError as problem:
            errors[f"{field_prefix}.{key}"] = [f"{definition.label} {problem}."]
            continue
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    for key, definition in definitions.items():
        if definition.required and merged.get(key) in (None, ""):
            errors.setdefault(f"{field_prefix}.{key}", []).append(f"{definition.label} is required.")
    if errors:
        raise ValidationError(errors)
    return merged

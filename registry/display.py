"""Readable words for the front desk: a change entry as 'Phone: 0977… → 0966…',
a member's age and disability in the words an officer reads out.

Presentation only: nothing here decides anything about a household.
"""

import datetime
import re
from dataclasses import dataclass
from functools import cache

from django.core.exceptions import FieldDoesNotExist
from django.utils import timezone

from .countries import current_country
from .models import (
    DISABILITY_DOMAINS,
    AttributeDefinition,
    AttributeEntity,
    ChangeAction,
    ChangeEntry,
    Difficulty,
    Household,
    Member,
)

EMPTY = "—"
LEVEL_SUFFIX = re.compile(r" \((province|district|ward|village)\)$")
DOMAIN_WORDS = {
    "seeing": "seeing",
    "hearing": "hearing",
    "walking": "walking",
    "cognition": "remembering",
    "self_care": "self-care",
    "communication": "communicating",
}


def member_age(member: Member, today: datetime.date | None = None) -> str:
    age = member.age_on(today or timezone.localdate())
    if age is None:
        return "Age not known"
    return f"{age} (est.)" if member.date_of_birth_estimated else str(age)


def member_disability(member: Member) -> str:
    """The domains with a lot of difficulty or worse (the Washington Group cut-off), or a plain 'No'."""
    if not member.has_disability:
        asked = any(degree is not None for degree in member.disability_degrees().values())
        return "No" if asked else "Not asked"
    domains = [
        DOMAIN_WORDS[domain]
        for domain, degree in member.disability_degrees().items()
        if (degree or 0) >= Difficulty.A_LOT
    ]
    return "Yes: " + ", ".join(domains)


@dataclass
class ChangeLine:
    field: str
    old: str
    new: str


@dataclass
class HistoryRow:
    entry: ChangeEntry
    title: str
    lines: list[ChangeLine]
    created: bool = False


def _field_label(model, name: str) -> str:
    if name == "national_id":
        return current_country().national_id_label
    if name.startswith("disability_"):
        return "Difficulty " + DOMAIN_WORDS.get(name.removeprefix("disability_"), name)
    try:
        label = str(model._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        label = name.replace("_", " ")
    return label[:1].upper() + label[1:]


@cache
def _field_positions(model) -> dict[str, int]:
    return {field.name: index for index, field in enumerate(model._meta.get_fields())}


def _field_order(model, name: str) -> int:
    """Changes listed in the order the form asks for them (the database may keep JSON keys in another)."""
    positions = _field_positions(model)
    return positions.get(name, len(positions))


def _value_words(model, name: str, value) -> str:
    if value in (None, "", [], {}):
        return EMPTY
    if isinstance(value, dict) and "label" in value:
        # A location's label carries its level, "Chibongo (village)"; the field name says it already.
        return LEVEL_SUFFIX.sub("", str(value["label"]))
    if isinstance(value, bool):
        return "Yes" if value else "No"
    try:
        # No model for an extensible attribute (`attribute_display`): its value is shown as it is.
        field = model._meta.get_field(name) if model is not None else None
    except FieldDoesNotExist:
        field = None
    if field is not None and field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return datetime.date.fromisoformat(value).strftime("%d %b %Y")
        except ValueError:
            return value
    return str(value)


def _attribute_lines(old: dict | None, new: dict | None, labels: dict[str, str]) -> list[ChangeLine]:
    old, new = old or {}, new or {}
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(
                ChangeLine(
                    labels.get(key, key.replace("_", " ").capitalize()),
                    _value_words(None, key, old.get(key)),
                    _value_words(None, key, new.get(key)),
                )
            )
    return lines


def history_rows(entries, *, attribute_labels: dict[str, dict[str, str]]) -> list[HistoryRow]:
    """Each change entry with a headline and its changes, field by field, in words."""
    rows = []
    for entry in entries:
        model = Member if entry.entity == AttributeEntity.MEMBER else Household
        subject = entry.member.full_name if entry.member_id and entry.member else ""
        title = entry.get_action_display()
        if entry.entity == AttributeEntity.MEMBER:
            title = {
                ChangeAction.CREATE: "Member added",
                ChangeAction.UPDATE: "Member edited",
                ChangeAction.DELETE: "Member removed",
            }.get(entry.action, title)
        elif entry.action == ChangeAction.CREATE:
            title = "Household registered"
        elif entry.action == ChangeAction.UPDATE:
            title = "Household edited"
        if subject:
            title = f"{title}: {subject}"
        created = entry.action in (ChangeAction.CREATE, ChangeAction.BIRTH, ChangeAction.IMPORT)
        lines = []
        for name, pair in sorted((entry.changes or {}).items(), key=lambda item: _field_order(model, item[0])):
            old, new = (list(pair) + [None, None])[:2] if isinstance(pair, list) else (None, pair)
            if name == "attributes":
                lines += _attribute_lines(old, new, attribute_labels.get(entry.entity, {}))
            elif not (created and new is False):
                lines.append(
                    ChangeLine(
                        _field_label(model, name), _value_words(model, name, old), _value_words(model, name, new)
                    )
                )
        rows.append(HistoryRow(entry, title, lines, created))
    return rows


def attribute_labels() -> dict[str, dict[str, str]]:
    """Labels of every attribute definition (inactive ones too: old history still names them)."""
    labels: dict[str, dict[str, str]] = {AttributeEntity.HOUSEHOLD: {}, AttributeEntity.MEMBER: {}}
    for entity, key, label in AttributeDefinition.objects.values_list("entity", "key", "label"):
        labels.setdefault(entity, {})[key] = label
    return labels


def attribute_display(values: dict, labels: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (labels.get(key, key.replace("_", " ").capitalize()), _value_words(None, key, value))
        for key, value in sorted(values.items())
    ]


__all__ = ["DISABILITY_DOMAINS", "member_age", "member_disability", "history_rows", "attribute_labels"]

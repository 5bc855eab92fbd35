"""District scoping: the one place that decides which districts a user may see.

Every queryset of personal data passes through `scope_to_user` (or a selector
built on it). A user with no districts and no all-district role sees nothing.
"""

from django.db.models import QuerySet


def district_ids_for(user) -> list[int] | None:
    """The ids of the districts `user` may see, or None for every district."""
    if not user or not user.is_authenticated or not user.is_active:
        return []
    if user.sees_every_district:
        return None
    cached = getattr(user, "_district_ids", None)
    if cached is None:
        cached = list(user.districts.values_list("pk", flat=True))
        user._district_ids = cached
    return cached


def scope_to_user(queryset: QuerySet, user, *, district_field: str = "district") -> QuerySet:
    """Filter `queryset` to rows in the user's districts; `district_field` is the path to the district."""
    ids = district_ids_for(user)
    if ids is None:
        return queryset
    return queryset.filter(**{f"{district_field}__in": ids})


def user_may_see_district(user, district_id: int) -> bool:
    ids = district_ids_for(user)
    return ids is None or district_id in ids

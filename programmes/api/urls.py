from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import AgencyViewSet, HouseholdEligibilityView, ProgrammeViewSet

router = DefaultRouter(use_regex_path=False)
router.include_root_view = False  # the registry's router gives /api/v1/ its root
router.include_format_suffixes = False
router.register("programmes", ProgrammeViewSet, basename="programme")
router.register("agencies", AgencyViewSet, basename="agency")

urlpatterns = [
    # Before the registry's router, which owns the rest of `households/`.
    path("households/<int:pk>/eligibility/", HouseholdEligibilityView.as_view(), name="household-eligibility"),
    *router.urls,
]

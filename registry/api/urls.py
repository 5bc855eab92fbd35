from rest_framework.routers import DefaultRouter

from .views import HouseholdViewSet, IndividualViewSet

# Path converters (`<int:pk>`) so that ids are integers in the schema too; JSON
# is the only format, so no `.json` suffix routes.
router = DefaultRouter(use_regex_path=False)
router.include_format_suffixes = False
router.register("households", HouseholdViewSet, basename="household")
router.register("individuals", IndividualViewSet, basename="individual")

urlpatterns = router.urls

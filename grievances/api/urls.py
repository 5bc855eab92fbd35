from rest_framework.routers import DefaultRouter

from .views import GrievanceViewSet

router = DefaultRouter(use_regex_path=False)
router.include_root_view = False  # the registry's router gives /api/v1/ its root
router.include_format_suffixes = False
router.register("grievances", GrievanceViewSet, basename="grievance")

urlpatterns = router.urls

from rest_framework.routers import DefaultRouter

from .views import EnrolmentViewSet, PaymentCycleViewSet, PaymentViewSet

router = DefaultRouter(use_regex_path=False)
router.include_root_view = False  # the registry's router gives /api/v1/ its root
router.include_format_suffixes = False
router.register("enrolments", EnrolmentViewSet, basename="enrolment")
router.register("payment-cycles", PaymentCycleViewSet, basename="payment-cycle")
router.register("payments", PaymentViewSet, basename="payment")

urlpatterns = router.urls

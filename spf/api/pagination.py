from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    # A partner system may pull big pages; more than this and a page stops
    # being a page and becomes an export.
    max_page_size = 500
    invalid_page_message = "There is no page {page_number}: {message}"

    def get_page_number(self, request, paginator):
        """A page that is not a page number is a bad request naming `page` (400); one past the end stays a 404."""
        number = super().get_page_number(request, paginator)
        if number in self.last_page_strings:
            return number
        try:
            valid = int(number) >= 1
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise ValidationError({"page": [f"'{number}' is not a page number: write 1, 2, 3… or 'last'."]})
        return number

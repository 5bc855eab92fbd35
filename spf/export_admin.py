"""The record of personal data exports in the admin: who took which file, when. Read only, ministry staff.

A row names a user, a kind of file and what it held in the page's words (the figure, the place, the
period), never a household's data. It has no district of its own (an export may cover several), so ministry
staff read it by their role and other staff need Django's view permission.
"""

from django.contrib import admin

from .admin import MinistryRoleAccess
from .models import PersonalDataExport


@admin.register(PersonalDataExport)
class PersonalDataExportAdmin(MinistryRoleAccess, admin.ModelAdmin):
    list_display = ["at", "user", "kind", "what", "rows", "file_name"]
    list_filter = ["kind", "at"]
    search_fields = ["user__username", "what", "file_name"]
    search_help_text = "A user name, or words of what was exported or of the file's name."
    date_hierarchy = "at"
    list_select_related = ["user"]
    fields = ["at", "user", "kind", "what", "file_name", "rows", "address"]
    readonly_fields = fields
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

"""Canned replies, edited by supervisors and picked in the desk's composer with /shortcut.
Imported by conversations/admin.py."""

from django.contrib import admin

from conversations.models import CannedReply


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ("shortcut", "text", "updated_at")
    search_fields = ("shortcut", "text")

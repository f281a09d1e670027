from django.contrib import admin

from common.workqueue.admin import AttemptInline, WorkItemAdminMixin
from tests.workqueue_app.models import Job


@admin.register(Job)
class JobAdmin(WorkItemAdminMixin, admin.ModelAdmin):
    list_display = ("id", "name", "action", "status", "queue_state", "attempts")
    inlines = [AttemptInline]

"""Third-party admin pages in the theme: users and groups (django.contrib.auth) and django-q2's
tasks. Their behaviour is the packages' own; only the base class changes. Imported by config.urls,
after every app's admin module has registered.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django_q import admin as q_admin
from django_q.models import Failure, OrmQ, Schedule, Success
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm


def _reregister(model, admin_class) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, admin_class)


class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass


class ScheduleAdmin(q_admin.ScheduleAdmin, ModelAdmin):
    pass


class SuccessAdmin(q_admin.TaskAdmin, ModelAdmin):
    list_display = ("name", "func", "started", "stopped", "time_taken", "group")
    # The newest first; django-q2 keeps at most Q_CLUSTER["save_limit"] of them.
    ordering = ("-stopped",)


class FailureAdmin(q_admin.FailAdmin, ModelAdmin):
    list_display = ("name", "func", "started", "stopped", "short_result", "attempt_count")
    ordering = ("-stopped",)

    @display(description="Error")
    def short_result(self, obj) -> str:
        return super().short_result(obj)


class QueueAdmin(q_admin.QueueAdmin, ModelAdmin):
    pass


_reregister(User, UserAdmin)
_reregister(Group, GroupAdmin)
_reregister(Schedule, ScheduleAdmin)
_reregister(Success, SuccessAdmin)
_reregister(Failure, FailureAdmin)
if admin.site.is_registered(OrmQ):
    _reregister(OrmQ, QueueAdmin)

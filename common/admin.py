from django.contrib import admin

from common.workqueue.admin import AttemptAdmin
from common.workqueue.models import Attempt

admin.site.register(Attempt, AttemptAdmin)

"""Public email paths: the unsubscribe page and its one-click POST (no login)."""

from django.urls import path

from campaigns.email.unsubscribe import unsubscribe_view

urlpatterns = [
    path("unsubscribe/<str:token>/", unsubscribe_view, name="email-unsubscribe"),
]

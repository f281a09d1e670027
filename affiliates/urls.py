"""Public affiliate URLs: the referral link (no login)."""

from django.urls import path

from affiliates.views import click_redirect

urlpatterns = [
    path("r/<str:code>", click_redirect, name="affiliate-click"),
    path("r/<str:code>/", click_redirect),
]

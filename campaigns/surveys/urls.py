"""The public survey page (no login): /s/<token>/?score=N."""

from django.urls import path

from campaigns.surveys.views import survey_page

urlpatterns = [
    path("<str:token>/", survey_page, name="survey-page"),
]

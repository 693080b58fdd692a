"""Provides the URLs of the recommendations API; include them under a prefix, e.g. ``path("api/", include(...))``.

Besides the generic ``items/<app_label.model>/<pk>/similar/``, a host can route neighbours
per model: ``path("books/<int:pk>/similar/", SimilarItemsListApi.as_view(item_model="shop.Book"))``.
"""
from django.urls import path

from . import experiments, impressions, views

app_name = "recommendations_api"

urlpatterns = [
    path("recommendations/", views.UserRecommendationsListApi.as_view(), name="user-recommendations"),
    path("items/<str:label>/<str:pk>/similar/", views.SimilarItemsListApi.as_view(), name="similar-items"),
    path("impressions/metrics/", impressions.DailyMetricListApi.as_view(), name="impression-metrics"),
    path("impressions/<str:recommendation_id>/", impressions.ImpressionDetailApi.as_view(), name="impression-detail"),
    path("impressions/<str:recommendation_id>/clicks/", impressions.ImpressionClickApi.as_view(),
         name="impression-clicks"),
    path("builds/", views.BuildRunListStartApi.as_view(), name="builds"),
    path("builds/<int:pk>/", views.BuildRunDetailApi.as_view(), name="build-detail"),
    path("experiments/", experiments.ExperimentListApi.as_view(), name="experiments"),
    path("experiments/<slug:slug>/results/", experiments.ExperimentResultsApi.as_view(), name="experiment-results"),
]

"""Provides the URLs of the site's API (included under ``api/``)."""
from django.urls import path

from . import views

app_name = "articles_api"

urlpatterns = [
    path("ping/", views.PingApi.as_view(), name="ping"),
    path("auth/token/", views.AuthTokenObtainApi.as_view(), name="auth-token"),
    path("articles/", views.ArticleListApi.as_view(), name="articles"),
    path("articles/<int:pk>/", views.ArticleDetailApi.as_view(), name="article-detail"),
    path("books/", views.BookListApi.as_view(), name="books"),
    path("books/<int:pk>/", views.BookDetailApi.as_view(), name="book-detail"),
    path("reads/", views.ReadListCreateApi.as_view(), name="reads"),
    path("reads/<int:pk>/", views.ReadDetailApi.as_view(), name="read-detail"),
    path("reads/<int:pk>/beacon/", views.ReadBeaconApi.as_view(), name="read-beacon"),
    path("ratings/", views.RatingListSetApi.as_view(), name="ratings"),
    path("ratings/<int:pk>/", views.RatingDetailApi.as_view(), name="rating-detail"),
    path("not-interested/", views.NotInterestedListApi.as_view(), name="not-interested"),
    path("not-interested/<int:pk>/", views.NotInterestedDetailApi.as_view(), name="not-interested-detail"),
]

"""URLs of the content site's pages, their small JSON endpoints and the account pages."""
from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("articles/", views.article_list, name="article-list"),
    path("articles/<slug:slug>/", views.article_detail, name="article-detail"),
    path("books/", views.book_list, name="book-list"),
    path("books/<int:pk>/", views.book_detail, name="book-detail"),
    path("my-reading/", views.my_reading, name="my-reading"),
    path("my-reading/reads/<int:read_id>/delete", views.read_delete, name="read-delete"),
    path("items/<str:item_type>/<int:item_id>/rate", views.item_rate, name="item-rate"),
    path("items/<str:item_type>/<int:item_id>/rating/delete", views.item_rating_delete, name="item-rating-delete"),
    path("items/<str:item_type>/<int:item_id>/not-interested", views.item_not_interested, name="item-not-interested"),
    path("reads/<int:read_id>/beacon", views.read_beacon, name="read-beacon"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]

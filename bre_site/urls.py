"""URLs of the BRE site: pages, the REST API, its schema and docs, and the admin."""
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from articles.api import exceptions as api_errors
from recommendations.api.views import SimilarItemsListApi

api_urlpatterns = [
    # First: Django tries the patterns in order, and a reader's picks are the most requested URL.
    path("", include("recommendations.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Per-model paths for neighbours; the generic one is items/<label>/<pk>/similar/.
    path("articles/<int:pk>/similar/", SimilarItemsListApi.as_view(item_model="articles.Article"),
         name="api-article-similar"),
    path("books/<int:pk>/similar/", SimilarItemsListApi.as_view(item_model="articles.Book"),
         name="api-book-similar"),
    path("", include("articles.api.urls")),
    # Last: any other URL under api/ is a JSON 404 (also with DEBUG on, and instead of APPEND_SLASH redirects).
    re_path(r"^.*$", api_errors.api_not_found),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api_urlpatterns)),
    path("", include("articles.urls")),
]

handler400 = api_errors.bad_request
handler403 = api_errors.permission_denied
handler404 = api_errors.page_not_found
handler500 = api_errors.server_error

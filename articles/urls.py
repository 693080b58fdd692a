"""URLs of the content site's pages."""
from django.urls import path

urlpatterns = []

"""Helpers for the API's list responses: ``{"recommendation_id": ..., "results": [...]}`` with a fresh id each time."""
from __future__ import annotations

import re
from typing import Any

from rest_framework.test import APIClient

RID = re.compile(rb'"recommendation_id":\s*"[0-9a-f-]{36}"')
SAME_RID = b'"recommendation_id":"00000000-0000-0000-0000-000000000000"'


class ListResponse:
    """A list endpoint's response seen as its results: ``json()`` is the list, ``content`` has the id blanked."""

    def __init__(self, response) -> None:
        self.response = response
        self.status_code = response.status_code

    @property
    def content(self) -> bytes:
        return RID.sub(SAME_RID, self.response.content)

    @property
    def recommendation_id(self) -> str:
        return self.response.json()["recommendation_id"]

    def json(self) -> Any:
        body = self.response.json()
        return body["results"] if isinstance(body, dict) and "results" in body and "recommendation_id" in body else body

    def __getitem__(self, header: str) -> str:
        return self.response[header]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.response, name)


def results(response) -> Any:
    """Return the results of a list response (the body itself for other responses)."""
    return ListResponse(response).json()


class ListAPIClient(APIClient):
    """An ``APIClient`` whose responses read as their results (see ``ListResponse``)."""

    def get(self, *args, **kwargs):
        return ListResponse(super().get(*args, **kwargs))

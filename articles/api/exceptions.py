"""Provides JSON errors for the whole API: DRF's exception handler and Django's 400/404/500 views under /api/.

Every error body has the shape ``{"detail": str, "code": str}``; a validation error adds
``"errors": {field: [message, ...]}``. Django's ``ValidationError`` raised by a service becomes
HTTP 400, like DRF's own.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
)
from django.core.exceptions import (
    ValidationError as DjangoValidationError,
)
from django.http import JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

API_PREFIX = "/api/"


def _flatten(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _flatten(value)]
    if isinstance(detail, (list, tuple)):
        return [m for value in detail for m in _flatten(value)]
    return [str(detail)]


def _errors_of(detail: Any) -> dict[str, list[str]]:
    """Return ``{field: [messages]}`` for a DRF validation error detail."""
    if isinstance(detail, dict):
        return {str(key): _flatten(value) for key, value in detail.items()}
    return {"non_field_errors": _flatten(detail)}


def _summary(errors: dict[str, list[str]]) -> str:
    parts = []
    for field, messages in errors.items():
        text = " ".join(messages)
        parts.append(text if field == "non_field_errors" else f"{field}: {text}")
    return "Invalid input. " + " ".join(parts) if parts else "Invalid input."


def django_validation_to_drf(exc: DjangoValidationError) -> exceptions.ValidationError:
    """Turn a service's ``django.core.exceptions.ValidationError`` into DRF's (HTTP 400)."""
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError(exc.message_dict)
    return exceptions.ValidationError({"non_field_errors": exc.messages})


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Return a JSON response for any exception a view raises; unknown ones stay 500 (logged by Django)."""
    if isinstance(exc, DjangoValidationError):
        exc = django_validation_to_drf(exc)
    elif isinstance(exc, RequestDataTooBig):
        exc = _PayloadTooLarge()
    elif isinstance(exc, (SuspiciousOperation, TooManyFieldsSent)):
        exc = exceptions.ParseError(str(exc) or "The request could not be read.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _errors_of(exc.detail)
        response.data = {"detail": _summary(errors), "code": "invalid", "errors": errors}
    else:
        detail = getattr(exc, "detail", None)
        if isinstance(detail, (dict, list)):
            message = " ".join(_flatten(detail))
        elif detail is not None:
            message = str(detail)
        else:
            message = str(exc)
        code = detail.code if hasattr(detail, "code") else getattr(exc, "default_code", "error")
        response.data = {"detail": message, "code": str(code)}
    return response


class _PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def _json_error(status_code: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status_code)


@csrf_exempt
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Answer an unknown URL under /api/ with JSON (routed as the API's last, catch-all pattern)."""
    return _json_error(404, f"No API endpoint at {request.path}.", "not_found")


def bad_request(request, exception=None, template_name: str = "400.html"):
    """Django's ``handler400``: JSON under /api/, the usual page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return _json_error(400, "The request could not be read.", "bad_request")
    return defaults.bad_request(request, exception, template_name=template_name)


def permission_denied(request, exception=None, template_name: str = "403.html"):
    """Django's ``handler403``: JSON under /api/, the usual page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return _json_error(403, "You do not have permission to perform this action.", "permission_denied")
    return defaults.permission_denied(request, exception, template_name=template_name)


def page_not_found(request, exception=None, template_name: str = "404.html"):
    """Django's ``handler404``: JSON under /api/, the usual page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return _json_error(404, "Not found.", "not_found")
    return defaults.page_not_found(request, exception, template_name=template_name)


def server_error(request, template_name: str = "500.html"):
    """Django's ``handler500``: JSON under /api/, the usual page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return _json_error(500, "Internal server error; it has been logged.", "server_error")
    return defaults.server_error(request, template_name=template_name)


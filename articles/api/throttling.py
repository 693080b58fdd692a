"""Provides the site API's write throttle: DRF's scoped rate throttle, applied to unsafe methods only."""
from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import ScopedRateThrottle


class WriteRateThrottle(ScopedRateThrottle):
    """Throttle unsafe methods with the view's ``throttle_scope``; reads stay unthrottled."""

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


class WriteThrottled:
    """Base for views whose writes count against the "writes" rate (``DEFAULT_THROTTLE_RATES``)."""

    throttle_classes = [WriteRateThrottle]
    throttle_scope = "writes"

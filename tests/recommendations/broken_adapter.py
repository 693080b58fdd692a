"""An adapter module that fails to import (a missing dependency), for the E012 check test."""
import a_package_that_is_not_installed  # noqa: F401

from recommendations.adapters import DefaultAdapter


class ShopAdapter(DefaultAdapter):
    pass

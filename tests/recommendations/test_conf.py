"""Tests of recommendations/conf.py: defaults, user values, and reload under override_settings."""
from __future__ import annotations

import pytest
from django.test import override_settings

from recommendations import adapters
from recommendations.conf import DEFAULTS, AppSettings, app_settings


class FakeAdapter(adapters.DefaultAdapter):
    pass


class TestAppSettings:
    def test_defaults_apply_when_the_setting_is_absent(self, settings):
        del settings.RECOMMENDATIONS
        for key, value in DEFAULTS.items():
            assert getattr(app_settings, key) == value

    def test_user_values_override_defaults_and_others_keep_them(self):
        with override_settings(RECOMMENDATIONS={"N_SIMILAR": 7, "ITEM_MODELS": ["testapp.Item"]}):
            assert app_settings.N_SIMILAR == 7
            assert app_settings.ITEM_MODELS == ["testapp.Item"]
            assert app_settings.N_RECOMMENDATIONS == DEFAULTS["N_RECOMMENDATIONS"]

    def test_reloads_on_override_and_back(self):
        before = app_settings.N_SIMILAR
        with override_settings(RECOMMENDATIONS={"N_SIMILAR": 3}):
            assert app_settings.N_SIMILAR == 3
            with override_settings(RECOMMENDATIONS={"N_SIMILAR": 4}):
                assert app_settings.N_SIMILAR == 4
            assert app_settings.N_SIMILAR == 3
        assert app_settings.N_SIMILAR == before

    def test_other_settings_do_not_reload(self):
        with override_settings(RECOMMENDATIONS={"N_SIMILAR": 3}):
            assert app_settings.N_SIMILAR == 3
            with override_settings(SITE_ID=5):
                assert app_settings.N_SIMILAR == 3

    def test_adapter_follows_the_setting(self):
        default = adapters.get_adapter()
        with override_settings(RECOMMENDATIONS={"ADAPTER": f"{__name__}.FakeAdapter"}):
            assert type(adapters.get_adapter()) is FakeAdapter
        assert adapters.get_adapter() is not None and type(adapters.get_adapter()) is type(default)

    def test_unknown_setting_is_an_attribute_error(self):
        with pytest.raises(AttributeError, match="Invalid RECOMMENDATIONS setting"):
            app_settings.N_RECOMENDATIONS  # noqa: B018

    def test_every_default_is_documented_in_the_readme(self):
        from pathlib import Path

        import recommendations

        readme = (Path(recommendations.__file__).parent / "README.md").read_text()
        missing = [key for key in DEFAULTS if f"`{key}`" not in readme]
        assert missing == []

    def test_separate_instances_do_not_share_a_cache(self):
        with override_settings(RECOMMENDATIONS={"N_SIMILAR": 9}):
            other = AppSettings({"N_SIMILAR": 1, "X": 2})
            assert other.N_SIMILAR == 9 and other.X == 2

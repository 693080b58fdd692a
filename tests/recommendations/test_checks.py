"""Tests of the system checks in recommendations/checks.py: every broken setting has its stable id."""
from __future__ import annotations

import json

import pytest
from django.core import checks
from django.test import override_settings

from recommendations.checks import check_database, check_settings
from tests.recommendations.conftest import TESTAPP_RECOMMENDATIONS

LIKE = TESTAPP_RECOMMENDATIONS["INTERACTIONS"][0]
SCORE = TESTAPP_RECOMMENDATIONS["INTERACTIONS"][1]


def _ids(conf) -> list[str]:
    with override_settings(RECOMMENDATIONS=conf):
        return [message.id for message in check_settings()]


def _with(**changes):
    return {**TESTAPP_RECOMMENDATIONS, **changes}


def _interaction(**changes):
    return _with(INTERACTIONS=[{**LIKE, **changes}])


BROKEN = {
    "E001": [["testapp.Item"], "not a dict"],
    "E002": [_with(ITEM_MODELS=[]), _with(ITEM_MODELS="testapp.Item"), {}],
    "E003": [_with(ITEM_MODELS=["testapp.Item", "testapp.Nope"]), _with(ITEM_MODELS=["no_dot"])],
    "E004": [_with(INTERACTIONS={"model": "testapp.Like"}), _with(INTERACTIONS=[{"user_field": "user"}]),
             _with(INTERACTIONS=["testapp.Like"])],
    "E005": [_interaction(model="testapp.Missing"), _interaction(model="nowhere.Like")],
    "E006": [_interaction(user_field="item"), _interaction(user_field="buyer")],
    "E007": [_interaction(item_field="user"), _interaction(item_field="product"),
             # A ForeignKey to a model that is not an item model.
             _with(ITEM_MODELS=["testapp.Like"], TEXT_FIELDS={}, ITEM_FILTERS={})],
    "E008": [_interaction(kind="click")],
    "E009": [_interaction(weight="heavy"), _interaction(weight=True)],
    "E010": [_interaction(timestamp_field="when"), _with(INTERACTIONS=[{**SCORE, "stars_field": "grade"}]),
             _with(INTERACTIONS=[{k: v for k, v in SCORE.items() if k != "stars_field"}])],
    "E011": [_with(TEXT_FIELDS={"testapp.Item": ["name", "colour"]}), _with(TEXT_FIELDS={"testapp.Item": ["name"], "testapp.Like": ["item"]}),
             _with(TEXT_FIELDS=["name"])],
    "E012": [_with(ADAPTER="nowhere.Adapter"), _with(ADAPTER="recommendations.conf.AppSettings")],
    "E013": [_with(ALGORITHM="magic")],
    "E014": [_with(N_SIMILAR=0), _with(N_RECOMMENDATIONS="10"), _with(KEEP_BUILDS=True), _with(LOCK_TIMEOUT=-5),
             _with(BUILD_CHUNK_SIZE=2.5), _with(N_POPULAR=None), _with(MODEL_TOP_K=0)],
    "E015": [_with(ALGORITHM_PARAMS_FILE="/nonexistent/params.json")],
    "E016": [_with(ITEM_FILTERS={"testapp.Like": {"pk": 1}}), _with(ITEM_FILTERS={"testapp.Item": "is_active"}),
             _with(ITEM_FILTERS=["testapp.Item"]),
             # Lookups that do not resolve against the model: every page would raise FieldError.
             _with(ITEM_FILTERS={"testapp.Item": {"is_published": True}}),
             _with(ITEM_FILTERS={"testapp.Item": {"name__startswithh": "A"}}),
             _with(ITEM_FILTERS={"testapp.Item": {"is_active": True, "pk": "not-a-uuid"}})],
    "E017": [_with(MMR_LAMBDA=2), _with(MMR_LAMBDA=-0.1), _with(MMR_LAMBDA="0.5")],
    "E018": [_with(DIVERSITY_CAPS=[(6, 0)]), _with(DIVERSITY_CAPS=[(12, 3), (12, 2)]), _with(DIVERSITY_CAPS="6,2"),
             _with(DIVERSITY_CAPS=[(6, 2, 1)]), _with(DIVERSITY_CAPS=[[6, "2"]]), _with(DIVERSITY_CAPS=None),
             _with(DIVERSITY_PENALTY=-1), _with(DIVERSITY_PENALTY="8"), _with(DIVERSITY_PENALTY=float("nan"))],
    "E019": [_with(TUNE_BUDGET_SECONDS=-1), _with(TUNE_BUDGET_SECONDS="60"), _with(RETUNE_GROWTH=-0.1),
             _with(RETUNE_GROWTH=True), _with(RETUNE_DAYS=None), _with(RETUNE_DAYS=float("nan"))],
    "E020": [_with(ATTRIBUTION_WINDOW_SECONDS=0), _with(IMPRESSION_RETENTION_DAYS="30"),
             _with(READ_THROUGH_PROGRESS=1.5), _with(IMPRESSION_FLUSH_SECONDS=-1)],
    "E021": [_with(BOT_USER_AGENTS="bot("), _with(BOT_USER_AGENTS=None)],
    "E022": [_with(IMPRESSIONS="yes")],
    "E026": [_with(EXPLORATION_SHARE=-0.1), _with(EXPLORATION_SHARE=0.6), _with(EXPLORATION_SHARE="0.1"),
             _with(EXPLORATION_SHARE=True)],
    "E027": [_with(NEW_ITEM_MAX_READERS=-1), _with(NEW_ITEM_MAX_READERS=2.5), _with(NEW_ITEM_MAX_READERS=None)],
    "E028": [_with(COLD_START="yes"), _with(COLD_START_PARAMS=[]), _with(COLD_START_PARAMS={"no_such_param": 1})],
    "E029": [_with(CACHE="no-such-cache"), _with(CACHE=None)],
    "E030": [_with(EXPLORATION_CANDIDATES=0), _with(EXPLORATION_CANDIDATES=2.5), _with(EXPLORATION_CANDIDATES=True),
             _with(EXPLORATION_CHOICE="popular"), _with(EXPLORATION_EPSILON=1.5), _with(EXPLORATION_EPSILON="0.1"),
             _with(EXPLORATION_EPSILON=float("nan"))],
    "W001": [_with(N_RECOMENDATIONS=5)],
    "W002": [_with(TEXT_FIELDS={})],
}
CASES = [(check_id, i, conf) for check_id, confs in BROKEN.items() for i, conf in enumerate(confs)]


class TestCheckSettings:
    def test_good_config_has_no_messages(self, db):
        assert _ids(TESTAPP_RECOMMENDATIONS) == []

    def test_site_config_has_no_errors(self, settings):
        # The project's own settings (bre_site) pass too.
        assert [m.id for m in check_settings() if m.is_serious()] == []

    @pytest.mark.parametrize(("check_id", "case", "conf"), CASES, ids=[f"{c}-{i}" for c, i, _ in CASES])
    def test_broken_config_fires_its_id(self, check_id, case, conf):
        ids = _ids(conf)
        assert f"recommendations.{check_id}" in ids
        if check_id != "E007":  # a ForeignKey to a non-item model also leaves that model without text fields
            assert set(ids) == {f"recommendations.{check_id}"}, ids

    def test_bad_params_file_json(self, tmp_path):
        path = tmp_path / "params.json"
        path.write_text("{not json")
        assert _ids(_with(ALGORITHM_PARAMS_FILE=str(path))) == ["recommendations.E015"]
        path.write_text(json.dumps({"algorithm": "itemknn", "params": {"top_k": 5}}))
        assert _ids(_with(ALGORITHM_PARAMS_FILE=str(path))) == []

    def test_every_documented_id_is_covered(self):
        import recommendations.checks as module

        documented = {line.split()[0] for line in module.__doc__.splitlines() if line[:1] in ("E", "W")}
        assert documented == set(BROKEN) | {"W003"}  # W003: TestCheckDatabase

    @pytest.mark.parametrize("check_id", sorted(BROKEN))
    def test_every_message_has_a_hint(self, check_id):
        with override_settings(RECOMMENDATIONS=BROKEN[check_id][0]):
            messages = [m for m in check_settings() if m.id == f"recommendations.{check_id}"]
        assert messages and all(m.hint for m in messages)
        assert all(isinstance(m, checks.Warning if check_id.startswith("W") else checks.Error) for m in messages)

    def test_diversity_caps_off_or_as_lists_pass(self, db):
        assert _ids(_with(DIVERSITY_CAPS=[])) == []
        assert _ids(_with(DIVERSITY_CAPS=[[12, 3], [6, 2]])) == []

    def test_tuning_settings_at_zero_pass(self, db):
        assert _ids(_with(TUNE_BUDGET_SECONDS=0, RETUNE_GROWTH=0, RETUNE_DAYS=0.5)) == []

    def test_registered_with_django(self):
        with override_settings(RECOMMENDATIONS=_with(MMR_LAMBDA=3)):
            ids = [m.id for m in checks.run_checks(tags=["recommendations"])]
        assert "recommendations.E017" in ids


class TestRootErrors:
    def test_a_misspelt_item_model_is_one_error(self):
        # INTERACTIONS, TEXT_FIELDS and ITEM_FILTERS all name the real model: only the typo is reported.
        conf = _with(ITEM_MODELS=["testapp.Itme"])
        assert _ids(conf) == ["recommendations.E003"]

    def test_an_empty_item_models_is_one_error(self):
        assert _ids(_with(ITEM_MODELS=[])) == ["recommendations.E002"]

    def test_a_resolved_item_model_still_gets_the_dependent_checks(self):
        assert _ids(_with(TEXT_FIELDS={"testapp.Item": ["name"], "testapp.Score": ["stars"]})) == ["recommendations.E011"]


class TestMessages:
    def _message(self, conf, check_id):
        with override_settings(RECOMMENDATIONS=conf):
            (message,) = [m for m in check_settings() if m.id == f"recommendations.{check_id}"]
        return message

    def test_adapter_import_error_is_shown(self):
        message = self._message(_with(ADAPTER="tests.recommendations.broken_adapter.ShopAdapter"), "E012")
        assert "No module named 'a_package_that_is_not_installed'" in message.msg
        assert "ModuleNotFoundError" in message.msg

    def test_adapter_missing_module_is_shown(self):
        assert "No module named 'nowhere'" in self._message(_with(ADAPTER="nowhere.Adapter"), "E012").msg

    def test_adapter_of_the_wrong_class_is_named(self):
        message = self._message(_with(ADAPTER="recommendations.conf.AppSettings"), "E012")
        assert "is not a DefaultAdapter subclass" in message.msg

    def test_bad_filter_lookup_names_the_field(self):
        message = self._message(_with(ITEM_FILTERS={"testapp.Item": {"is_published": True}}), "E016")
        assert "testapp.Item" in message.msg and "is_published" in message.msg

    def test_text_fields_hint_mentions_foreign_keys(self):
        message = self._message(_with(TEXT_FIELDS={"testapp.Item": ["colour"]}), "E011")
        assert "foreign key" in message.hint


class TestCheckDatabase:
    """W003: workers on SQLite need a long busy timeout and immediate transactions."""

    @staticmethod
    def _ids(**default) -> list[str]:
        with override_settings(DATABASES={"default": default}):
            return [m.id for m in check_database()]

    @pytest.mark.parametrize("options", [None, {}, {"timeout": 30}, {"transaction_mode": "IMMEDIATE"},
                                         {"timeout": 5, "transaction_mode": "IMMEDIATE"},
                                         {"timeout": 30, "transaction_mode": "DEFERRED"}])
    def test_sqlite_without_the_worker_options_warns(self, options):
        default = {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}
        if options is not None:
            default["OPTIONS"] = options
        with override_settings(DATABASES={"default": default}):
            messages = check_database()
        assert [m.id for m in messages] == ["recommendations.W003"]
        assert isinstance(messages[0], checks.Warning)
        assert """{'timeout': 30, 'transaction_mode': 'IMMEDIATE'}""" in messages[0].hint

    def test_sqlite_with_the_worker_options_and_other_databases_pass(self):
        assert self._ids(ENGINE="django.db.backends.sqlite3", NAME="db.sqlite3",
                         OPTIONS={"timeout": 30, "transaction_mode": "immediate", "init_command": "PRAGMA journal_mode=WAL"}) == []
        assert self._ids(ENGINE="django.db.backends.postgresql", NAME="shop") == []
        assert self._ids(ENGINE="bre_site.postgresql", NAME="shop") == []

    def test_the_project_settings_pass_and_it_is_registered(self):
        from django.conf import settings

        assert settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3" or check_database() == []
        with override_settings(DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x"}}):
            assert "recommendations.W003" in [m.id for m in checks.run_checks(tags=["recommendations"])]

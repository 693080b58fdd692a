"""Security checks of the site: production settings, deleting a reader, a staff-only admin, no secret in the repo."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.test import override_settings
from django.urls import reverse

from articles.models import Book, NotInterested, Rating, Read
from recommendations import services
from recommendations.models import BuildArtifact, BuildRun, SimilarItem, UserRecommendation, UserRefresh
from tests.reliability.support import fault_recommendations

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_KEY = "k3y-for-the-deploy-check-" + "x9Qz7Lm2Wv5Rt8Yp1Bn4Hc6Jd0Fs3Gk"


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")}
    env.update(DJANGO_ENV="production", DJANGO_SETTINGS_MODULE="bre_site.settings", BRE_VAR_DIR=str(tmp_path),
               DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    env.update(extra)
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


class TestProductionSettings:
    def test_check_deploy_reports_nothing(self, tmp_path):
        env = _production_env(tmp_path, SECRET_KEY=PRODUCTION_KEY, ALLOWED_HOSTS="bre.example.org")
        result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "System check identified no issues" in result.stdout

    def test_secret_key_is_required(self, tmp_path):
        env = _production_env(tmp_path, ALLOWED_HOSTS="bre.example.org")
        result = _manage(env, "check", "--deploy")
        assert result.returncode != 0
        assert "SECRET_KEY must be set in the environment when DJANGO_ENV=production" in result.stderr

    def test_allowed_hosts_are_required(self, tmp_path):
        env = _production_env(tmp_path, SECRET_KEY=PRODUCTION_KEY)
        result = _manage(env, "check", "--deploy")
        assert result.returncode != 0
        assert "ALLOWED_HOSTS must be set" in result.stderr

    def test_debug_off_secure_cookies_and_hsts(self, tmp_path):
        env = _production_env(tmp_path, SECRET_KEY=PRODUCTION_KEY, ALLOWED_HOSTS="bre.example.org")
        code = (
            "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
            "'DEBUG': s.DEBUG, 'SESSION_COOKIE_SECURE': s.SESSION_COOKIE_SECURE, "
            "'CSRF_COOKIE_SECURE': s.CSRF_COOKIE_SECURE, 'SECURE_HSTS_SECONDS': s.SECURE_HSTS_SECONDS, "
            "'SECURE_SSL_REDIRECT': s.SECURE_SSL_REDIRECT, 'ALLOWED_HOSTS': s.ALLOWED_HOSTS, "
            "'SECRET_KEY_FROM_ENV': s.SECRET_KEY == %r}))" % PRODUCTION_KEY
        )
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        values = json.loads(result.stdout.strip().splitlines()[-1])
        assert values == {
            "DEBUG": False, "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
            "SECURE_HSTS_SECONDS": values["SECURE_HSTS_SECONDS"], "SECURE_SSL_REDIRECT": True,
            "ALLOWED_HOSTS": ["bre.example.org"], "SECRET_KEY_FROM_ENV": True,
        }
        assert values["SECURE_HSTS_SECONDS"] >= 31536000


# --- deleting a reader ------------------------------------------------------------------------------


@pytest.fixture
def recs_settings():
    with override_settings(RECOMMENDATIONS=fault_recommendations(chunk_size=50, lock_timeout=600)):
        yield


def _pairs(build: BuildRun) -> set[tuple[str, str]]:
    return set(SimilarItem.objects.filter(build=build, kind=SimilarItem.Kind.COLLABORATIVE)
               .values_list("object_id", "target_object_id"))


def _reader_world(django_user_model):
    """Books 0-11; only ``victim`` reads books 0 and 1 together; everyone else reads other pairs."""
    books = [Book.objects.create(title=f"Book {i}", description=f"book number {i} about topic {i % 3}")
             for i in range(12)]
    ct = ContentType.objects.get_for_model(Book)
    victim = django_user_model.objects.create_user(username="victim", password="x")
    others = [django_user_model.objects.create_user(username=f"other{i}", password="x") for i in range(10)]

    def read(user, book, stars=None):
        Read.objects.create(user=user, content_type=ct, object_id=book.pk, dwell_seconds=120, progress=0.9)
        if stars:
            Rating.objects.create(user=user, content_type=ct, object_id=book.pk, stars=stars)

    read(victim, books[0], 5)
    read(victim, books[1], 4)
    read(victim, books[2])
    NotInterested.objects.create(user=victim, content_type=ct, object_id=books[11].pk)
    for i, user in enumerate(others):
        # Others read book 0 or book 1, never both, plus books 2-10: 0-1 are co-read only by the victim.
        read(user, books[i % 2], 4)
        for j in range(3):
            read(user, books[2 + (i + j) % 9], 3 + j % 2)
    return books, victim


def test_deleting_a_reader_removes_their_data_and_the_next_build_has_no_trace(db, django_user_model,
                                                                              recs_settings):
    books, victim = _reader_world(django_user_model)
    before = services.full_build_run(triggered_by="test")
    a, b = str(books[0].pk), str(books[1].pk)
    # The construction works: with the victim, books 0 and 1 are collaborative neighbours.
    assert (a, b) in _pairs(before) or (b, a) in _pairs(before)
    assert UserRecommendation.objects.filter(user=victim).exists()
    UserRefresh.objects.create(user=victim)

    victim_id = victim.pk
    victim.delete()
    for model in (Read, Rating, NotInterested, UserRecommendation, UserRefresh):
        assert not model.objects.filter(user_id=victim_id).exists(), model.__name__

    after = services.full_build_run(triggered_by="test")
    assert after.is_active and after.counts["users"] == 10
    pairs = _pairs(after)
    assert (a, b) not in pairs and (b, a) not in pairs
    state = services.build_state(after.pk)
    assert str(victim_id) not in state.user_keys
    with np.load(__import__("io").BytesIO(bytes(BuildArtifact.objects.get(build=after, name="maps").data))) as maps:
        assert str(victim_id) not in maps["user_id"].tolist()


def test_deleted_reader_leaves_nothing_in_kept_builds(db, django_user_model, recs_settings):
    """Older kept builds (KEEP_BUILDS, re-activable by an admin) must not keep the reader's history either."""
    books, victim = _reader_world(django_user_model)
    old = services.full_build_run(triggered_by="test")
    victim_id = victim.pk
    victim.delete()
    services.full_build_run(triggered_by="test")
    leftovers = []
    for artifact in BuildArtifact.objects.filter(name="maps"):
        with np.load(__import__("io").BytesIO(bytes(artifact.data))) as maps:
            if str(victim_id) in maps["user_id"].tolist():
                leftovers.append(f"user id in the maps artifact of build #{artifact.build_id}")
    a, b = str(books[0].pk), str(books[1].pk)
    if {(a, b), (b, a)} & _pairs(old) and BuildRun.objects.filter(pk=old.pk).exists():
        leftovers.append(f"neighbours computed only from the reader in build #{old.pk}")
    assert not leftovers, "Kept inactive builds still hold a deleted reader's data: " + "; ".join(leftovers)
    with pytest.raises(services.BuildError, match="predates a reader's deletion"):
        services.build_activate(build_id=old.pk)


# --- the admin is for staff only -----------------------------------------------------------------------


def _admin_urls() -> list[str]:
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        urls.append(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
    return urls


def test_admin_is_for_staff_only(client, django_user_model):
    urls = _admin_urls()
    assert len(urls) > 5
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], (url, response.status_code)
    reader = django_user_model.objects.create_user(username="reader", password="x")
    client.force_login(reader)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], (url, response.status_code)
    client.logout()
    staff = django_user_model.objects.create_superuser(username="editor", password="x", email="e@example.org")
    client.force_login(staff)
    for url in urls:
        assert client.get(url).status_code == 200, url


# --- no secret in the repository ---------------------------------------------------------------------------

SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret key": re.compile(r"aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+=]{40}"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "password in a URL": re.compile(r"\b[a-z][a-z0-9+]*://[^\s/:@'\"]+:[^\s/@'\"{}$<>]+@[\w.-]+"),
    "password": re.compile(r"(?i)\b\w*passw(?:or)?d\w*\s*[=:]\s*['\"]([^'\"\s]{4,})['\"]"),
    "secret key": re.compile(r"(?i)\b\w*(?:secret_key|api_key|token)\s*[=:]\s*['\"]([A-Za-z0-9_\-+/=]{20,})['\"]"),
}
# Values that look like passwords but are not secrets: the documented local-demo accounts
# (articles/demo.py, "never run this command on a public site") and this file's own deploy-check key.
NOT_SECRETS = {"demo-reader", "admin-editor"}


def test_no_secret_is_committed():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = [p for p in files.decode().split("\0") if p]
    assert len(paths) > 50
    found = []
    for path in paths:
        full = ROOT / path
        if not full.is_file() or full.stat().st_size > 2_000_000 or path == "tests/test_security.py":
            continue
        data = full.read_bytes()
        if b"\0" in data[:4096]:
            continue  # binary (gzip data sets, images)
        text = data.decode("utf-8", errors="replace")
        for name, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                value = match.group(1) if pattern.groups else match.group(0)
                if name in ("password", "secret key") and (path.startswith("tests/") or value in NOT_SECRETS):
                    continue  # throwaway passwords of test users in test databases
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path}:{line}: {name}")
    assert not found, found

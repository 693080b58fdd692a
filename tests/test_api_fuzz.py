"""Fuzzes the whole API with schemathesis against its own OpenAPI schema (``/api/schema/``).

Schemathesis generates valid and invalid requests for every operation, sends them through
the WSGI application anonymously, as a reader (token) and as staff (token), and checks each
response: no 5xx, a documented status code, the documented content type, headers and body
schema, and invalid input rejected with a 4xx. At least 1,000 cases run in total.
"""
from __future__ import annotations

import collections

import hypothesis
import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from articles.models import Article, Book, NotInterested, Rating, Read, Tag
from recommendations.models import BuildRun, PopularItem, SimilarItem, UserRecommendation

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_RUN = 8  # per operation, generation mode and identity
MIN_CASES = 1000


@pytest.fixture
def identities():
    """Two readers with history and stored picks, and a staff user; returns their auth headers."""
    User = get_user_model()
    reader = User.objects.create_user("fuzz-reader", password="pw-fuzz-1234")
    other = User.objects.create_user("fuzz-other", password="pw-fuzz-1234")
    staff = User.objects.create_user("fuzz-staff", password="pw-fuzz-1234", is_staff=True)
    tag = Tag.objects.create(name="Fuzz", slug="fuzz")
    articles = [Article.objects.create(title=f"Article {i}", slug=f"article-{i}", summary="s " * i)
                for i in range(1, 6)]
    books = [Book.objects.create(title=f"Book {i}", authors="A. Author", year=1900 + i) for i in range(1, 6)]
    for obj in articles[:2] + books[:2]:
        obj.tags.add(tag)
    art_ct, book_ct = ContentType.objects.get_for_model(Article), ContentType.objects.get_for_model(Book)
    for user in (reader, other):
        Read.objects.create(user=user, content_type=art_ct, object_id=articles[0].pk, dwell_seconds=10, progress=0.5)
        Rating.objects.create(user=user, content_type=book_ct, object_id=books[0].pk, stars=4)
        NotInterested.objects.create(user=user, content_type=art_ct, object_id=articles[1].pk)
    build = BuildRun.objects.create(status="succeeded", is_active=True, algorithm="fuzz")
    for rank, book in enumerate(books[1:], 1):
        UserRecommendation.objects.create(
            build=build, user=reader, content_type=book_ct, object_id=str(book.pk), rank=rank, score=1 / rank,
            explanation=[{"content_type": art_ct.pk, "object_id": str(articles[0].pk), "title": "Article 1"}],
        )
        SimilarItem.objects.create(build=build, kind="content", content_type=book_ct, object_id=str(books[0].pk),
                                   target_content_type=book_ct, target_object_id=str(book.pk), rank=rank,
                                   score=1 / rank)
        PopularItem.objects.create(build=build, content_type=book_ct, object_id=str(book.pk), rank=rank, score=9)
    reader_read = Read.objects.filter(user=reader).first()
    known_ids = {
        "/api/articles/{id}/": articles[0].pk,
        "/api/articles/{id}/similar/": articles[0].pk,
        "/api/books/{id}/": books[0].pk,
        "/api/books/{id}/similar/": books[0].pk,
        "/api/items/{label}/{id}/similar/": books[0].pk,
        "/api/reads/{id}/": reader_read.pk,
        "/api/reads/{id}/beacon/": reader_read.pk,
        "/api/ratings/{id}/": Rating.objects.get(user=reader).pk,
        "/api/not-interested/{id}/": NotInterested.objects.get(user=reader).pk,
        "/api/builds/{id}/": build.pk,
    }
    return {
        "known_ids": known_ids,
        "anonymous": {},
        "reader": {"Authorization": f"Token {Token.objects.create(user=reader).key}"},
        "staff": {"Authorization": f"Token {Token.objects.create(user=staff).key}"},
    }


def _run(operation, mode: GenerationMode, headers: dict, counter: collections.Counter,
         path_parameters: dict | None = None) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])

    @settings(
        max_examples=EXAMPLES_PER_RUN,
        deadline=None,
        derandomize=True,  # the same cases on every run: a failure is reproducible
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: keep the run short, report the raw case
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def test(case):
        response = case.call(headers=headers)
        counter["cases"] += 1
        counter[f"status {response.status_code}"] += 1
        case.validate_response(response, checks=checks, headers=headers)

    test()


@pytest.fixture
def wsgi_app():
    """The project's WSGI application, kept on the test's connection (as Django's test client does)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_api_conforms_to_its_schema_under_fuzzing(identities, wsgi_app):
    app = wsgi_app
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    counter: collections.Counter = collections.Counter()
    failures = []
    known_ids = identities.pop("known_ids")
    for operation in operations:
        runs = [(mode, who, None) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) for who in identities]
        if operation.path in known_ids:
            # Random ids mostly miss; also send valid requests about rows that exist (the reader's own, and
            # as staff), so the success paths and their response schemas are fuzzed too.
            fixed = {"id": known_ids[operation.path]}
            if "{label}" in operation.path:
                fixed["label"] = "articles.book"
            runs += [(GenerationMode.POSITIVE, who, fixed) for who in ("reader", "staff")]
        for mode, who, fixed in runs:
            try:
                _run(operation, mode, identities[who], counter, path_parameters=fixed)
            except hypothesis.errors.Unsatisfiable:
                # Nothing of this operation can be made invalid (e.g. no parameters and no body).
                counter["operations without negative cases"] += 1
            except Exception as exc:  # collect every failing operation, then report them all
                failures.append(f"{operation.label} [{mode.value}, {who}]: {type(exc).__name__}: {exc}"[:3000])
    print(f"\nschemathesis {schemathesis.__version__}: {counter['cases']} cases over {len(operations)} operations;",
          dict(sorted((k, v) for k, v in counter.items() if k != "cases")))
    assert not failures, "\n\n".join(failures)
    assert counter["cases"] >= MIN_CASES
    assert counter["status 500"] == 0

"""Tests of recommendations/build/parts.py: the parts fitted beside the user chunks."""
from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test import override_settings

from recommendations import selectors, services
from recommendations.build import lease, parts, pipeline, rows, state
from recommendations.models import BuildLock, BuildRun, PopularItem, SimilarItem, UserRecommendation
from tests.recommendations.columns import assert_columns_match_rows
from tests.recommendations.testapp.models import Item, Like, Score


def _rate_everything(world):
    """Enough explicit ratings for the star predictor (it needs 10)."""
    from tests.recommendations.testapp.models import Score

    for u, user in enumerate(world["users"].values()):
        for i, item in enumerate(world["items"].values()):
            if (u + i) % 3 == 0 and not Score.objects.filter(user=user, item=item).exists():
                Score.objects.create(user=user, item=item, stars=1 + (u * i) % 5)


def _stored(build_id):
    """A build's neighbours and picks (keys, scores) and its rating model's predictions."""
    import io

    import numpy as np

    from recommendations.algorithms.rating import BiasedMF
    from recommendations.models import BuildArtifact

    neighbours = sorted(SimilarItem.objects.filter(build_id=build_id)
                        .values_list("kind", "object_id", "target_object_id", "rank", "score"))
    picks = sorted(UserRecommendation.objects.filter(build_id=build_id)
                   .values_list("user_id", "object_id", "rank", "score"))
    blob = BuildArtifact.objects.get(build_id=build_id, name="rating_model").data
    model = BiasedMF.load(io.BytesIO(bytes(blob)))
    return ([row[:-1] for row in neighbours], [row[-1] for row in neighbours],
            [row[:-1] for row in picks], [row[-1] for row in picks], model.predict(np.arange(4), np.arange(4)).tolist())


def _assert_same(a, b):
    import numpy as np

    assert a[0] == b[0] and a[0]  # neighbours
    assert a[2] == b[2] and a[2]  # picks
    # Two fits of the same data may differ in the last float32 bit (threaded sums).
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)
    np.testing.assert_allclose(a[3], b[3], rtol=1e-5)
    assert a[4] == b[4]  # the same rating model


class TestBuildParts:
    """The neighbour lists and the rating model, fitted beside the user chunks (``build_part``)."""

    def _deferred_build(self, twice=False):
        build = BuildRun.objects.create()
        chunks = services.build_prepare(build_id=build.pk, parts_inline=False)
        assert not SimilarItem.objects.filter(build=build).exists()  # the parts did not run here
        for _ in range(2 if twice else 1):
            for part in services.BUILD_PARTS:
                services.build_part(build_id=build.pk, part=part)
            for start, stop in chunks:
                services.build_score_chunk(build_id=build.pk, start=start, stop=stop)
        return services.build_finalize(build_id=build.pk)

    def test_parts_as_their_own_tasks_store_what_an_inline_build_stores(self, world):
        _rate_everything(world)
        inline = services.full_build_run()
        deferred = self._deferred_build()
        assert deferred.status == BuildRun.Status.SUCCEEDED and deferred.is_active
        a, b = _stored(inline.pk), _stored(deferred.pk)
        _assert_same(a, b)
        assert inline.counts["ratings"] == deferred.counts["ratings"] > 10
        assert inline.counts["neighbours"] == deferred.counts["neighbours"] == len(a[0])
        assert "part_neighbours" in deferred.timings and "part_rating_model" in deferred.timings

    def test_a_part_delivered_twice_stores_its_rows_once(self, world):
        _rate_everything(world)
        inline = services.full_build_run()
        deferred = self._deferred_build(twice=True)
        assert deferred.is_active
        _assert_same(_stored(inline.pk), _stored(deferred.pk))
        rows = list(SimilarItem.objects.filter(build=deferred).values_list("kind", "object_id", "rank"))
        assert len(rows) == len(set(rows))

    def test_a_build_whose_part_did_not_run_fails_and_the_previous_stays_active(self, world):
        first = services.full_build_run()
        build = BuildRun.objects.create()
        chunks = services.build_prepare(build_id=build.pk, parts_inline=False)
        services.build_part(build_id=build.pk, part="rating_model")  # the neighbour lists are missing
        for start, stop in chunks:
            services.build_score_chunk(build_id=build.pk, start=start, stop=stop)
        with pytest.raises(services.BuildError, match="neighbours"):
            services.build_finalize(build_id=build.pk)
        build.refresh_from_db()
        assert build.status == BuildRun.Status.FAILED and not build.is_active
        assert BuildRun.objects.get(is_active=True) == first
        assert not UserRecommendation.objects.filter(build=build).exists()
        assert services.build_lock_holder() is None

    def test_unknown_part_is_refused(self, world):
        with pytest.raises(ValueError, match="Unknown build part"):
            services.build_part(build_id=0, part="everything")

"""Tests of recommendations/build/pipeline.py: a whole build, its switch, chunks and redeliveries, on the testapp host."""
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


def _active_rows(user):
    return list(
        UserRecommendation.objects.filter(build__is_active=True, user=user)
        .order_by("rank").values_list("object_id", "rank", "score")
    )


class TestFullBuildRun:
    def test_build_stores_picks_neighbours_and_popular(self, world):
        build = services.full_build_run()
        assert build.status == BuildRun.Status.SUCCEEDED and build.is_active
        assert set(build.timings) >= {"load", "fit", "write", "score", "switch"}
        assert build.counts["users"] == 8 and build.counts["items"] == 8
        space0 = world["users"]["space0"]
        picks = selectors.recommended_for(space0, n=3)
        # space0 left out the first space item, "Rockets to Mars": its only collaborative pick.
        assert picks[0].name == "Rockets to Mars" and picks[0].rec_source == "personal"
        # The list is filled up with fallbacks (content, then popular), never left short.
        assert len(picks) == 3 and {p.rec_source for p in picks[1:]} <= {"content", "popular"}
        assert picks[0].rec_because.startswith("Because you read ")
        # Items the user liked, or rated, never come back.
        liked = {l.item.name for l in Like.objects.filter(user=space0)}
        assert not liked & {p.name for p in picks}
        assert "Bread baking at home" not in {p.name for p in picks}

    def test_collaborative_neighbours_stay_in_taste_group(self, world):
        services.full_build_run()
        rockets = world["items"]["Rockets to Mars"]
        neighbours = selectors.similar_to(rockets, kind="collaborative", n=3)
        assert neighbours and all(n.name in {"Orbital mechanics for everyone", "Life on the moon", "Stars and galaxies"}
                                  for n in neighbours)
        scores = [n.rec_score for n in neighbours]
        assert scores == sorted(scores, reverse=True)

    def test_content_neighbours(self, world):
        services.full_build_run()
        pasta = world["items"]["Pasta from scratch"]
        names = [n.name for n in selectors.similar_to(pasta, kind="content", n=3)]
        assert "Italian kitchen basics" in names or "Bread baking at home" in names

    def test_inactive_items_are_not_served(self, world):
        services.full_build_run()
        rockets = world["items"]["Rockets to Mars"]
        Item.objects.filter(pk=rockets.pk).update(is_active=False)
        assert "Rockets to Mars" not in {p.name for p in selectors.recommended_for(world["users"]["space0"], n=5)}

    def test_popular_fallback_for_cold_user(self, world, django_user_model):
        services.full_build_run()
        newcomer = django_user_model.objects.create_user(username="new", password="x")
        picks = selectors.recommended_for(newcomer, n=4)
        assert len(picks) == 4 and all(p.rec_source == "popular" for p in picks)
        assert PopularItem.objects.filter(build__is_active=True, window="all").exists()


class TestAtomicSwitch:
    def test_failed_build_leaves_previous_active(self, world, monkeypatch):
        first = services.full_build_run()
        before = _active_rows(world["users"]["space0"])

        def boom(**kwargs):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(pipeline, "build_score_chunk", boom)
        with pytest.raises(RuntimeError):
            services.full_build_run()
        first.refresh_from_db()
        assert first.is_active
        failed = BuildRun.objects.exclude(pk=first.pk).get()
        assert failed.status == BuildRun.Status.FAILED and not failed.is_active
        assert _active_rows(world["users"]["space0"]) == before

    def test_failure_midway_through_chunks_leaves_no_visible_rows(self, world, monkeypatch):
        first = services.full_build_run()
        calls = {"n": 0}
        real = services.build_score_chunk

        def second_chunk_fails(**kwargs):
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("worker died")
            return real(**kwargs)

        monkeypatch.setattr(pipeline, "build_score_chunk", second_chunk_fails)
        with pytest.raises(RuntimeError):
            services.full_build_run()
        assert BuildRun.objects.get(is_active=True) == first
        assert not UserRecommendation.objects.exclude(build=first).filter(build__is_active=True).exists()

    def test_activate_switches_back(self, world):
        first = services.full_build_run()
        second = services.full_build_run()
        assert not BuildRun.objects.get(pk=first.pk).is_active
        services.build_activate(build_id=first.pk)
        assert BuildRun.objects.get(is_active=True).pk == first.pk

    def test_old_builds_are_pruned(self, world, settings):
        builds = [services.full_build_run() for _ in range(5)]
        kept = BuildRun.objects.filter(status=BuildRun.Status.SUCCEEDED)
        assert kept.count() == 3
        assert not SimilarItem.objects.filter(build_id=builds[0].pk).exists()


class TestReaderDeletedDuringBuild:
    def test_build_finishes_without_the_deleted_readers_picks(self, world, monkeypatch):
        gone = world["users"]["cooking3"]
        gone_pk = gone.pk  # delete() sets it to None
        real = services.build_score_chunk
        calls = {"n": 0}

        def delete_reader_first(**kwargs):
            calls["n"] += 1
            if calls["n"] == 1:  # after prepare: the build's data and model still hold the reader
                gone.delete()
            return real(**kwargs)

        monkeypatch.setattr(pipeline, "build_score_chunk", delete_reader_first)
        build = services.full_build_run()
        assert build.status == BuildRun.Status.SUCCEEDED and build.is_active and not build.reactivable
        # Their chunk still scored them; the picks table has no database constraint to refuse the rows.
        assert not UserRecommendation.objects.filter(build=build, user_id=gone_pk).exists()
        assert build.counts["recommendations"] == UserRecommendation.objects.filter(build=build).count() > 0
        assert _active_rows(world["users"]["space0"]) and _active_rows(world["users"]["cooking0"])
        assert SimilarItem.objects.filter(build=build).exists()

    def test_deleting_a_reader_deletes_their_picks(self, world):
        services.full_build_run()
        reader = world["users"]["space0"]
        assert _active_rows(reader)
        reader_pk = reader.pk
        reader.delete()
        assert not UserRecommendation.objects.filter(user_id=reader_pk).exists()


class TestIdempotence:
    def test_scoring_a_chunk_twice_gives_same_rows(self, world):
        build = BuildRun.objects.create()
        chunks = services.build_prepare(build_id=build.pk)
        for start, stop in chunks:
            services.build_score_chunk(build_id=build.pk, start=start, stop=stop)
        once = sorted(UserRecommendation.objects.filter(build=build).values_list("user_id", "object_id", "rank"))
        for start, stop in chunks:
            services.build_score_chunk(build_id=build.pk, start=start, stop=stop)
        twice = sorted(UserRecommendation.objects.filter(build=build).values_list("user_id", "object_id", "rank"))
        assert once == twice
        services.build_finalize(build_id=build.pk)
        services.build_finalize(build_id=build.pk)
        assert BuildRun.objects.filter(is_active=True).count() == 1

    def test_a_chunk_probes_for_its_rows_instead_of_deleting(self, world):
        """No DELETE per chunk: PostgreSQL ran it as a scan of all the build's rows so far (quadratic builds)."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        build = BuildRun.objects.create()
        (start, stop), *_ = services.build_prepare(build_id=build.pk)
        table = UserRecommendation._meta.db_table
        written = []
        for _ in range(2):
            with CaptureQueriesContext(connection) as queries:
                written.append(services.build_score_chunk(build_id=build.pk, start=start, stop=stop))
            on_picks = [q["sql"] for q in queries.captured_queries if table in q["sql"]]
            assert not [sql for sql in on_picks if sql.lstrip().upper().startswith("DELETE")]
            assert sum("LIMIT 1" in sql for sql in on_picks) == 1
        assert written[0] > 0 and written[1] == 0  # the second delivery found the rows and wrote nothing
        assert UserRecommendation.objects.filter(build=build).count() == written[0]


@pytest.mark.django_db(transaction=True)
class TestChunkDeliveredTwiceAtOnce:
    """acks_late may hand one chunk to two workers at once: the twins must not double the picks."""

    @staticmethod
    def _twice(func, **kwargs) -> list[BaseException]:
        import threading

        from django.db import connections

        barrier, errors = threading.Barrier(2), []

        def run():
            try:
                barrier.wait()
                func(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        return errors

    def test_twins_store_each_pick_once(self, world):
        from collections import Counter

        reference = services.full_build_run()
        expected = Counter(UserRecommendation.objects.filter(build=reference).values_list("user_id", "object_id", "rank"))
        build = BuildRun.objects.create()
        chunks = services.build_prepare(build_id=build.pk)
        assert len(chunks) > 1
        for start, stop in chunks:
            assert self._twice(services.build_score_chunk, build_id=build.pk, start=start, stop=stop) == []
        assert self._twice(services.build_finalize, build_id=build.pk) == []
        build.refresh_from_db()
        assert build.status == BuildRun.Status.SUCCEEDED and build.is_active
        got = Counter(UserRecommendation.objects.filter(build=build).values_list("user_id", "object_id", "rank"))
        assert got == expected
        # A twin delivered after the switch writes nothing.
        start, stop = chunks[0]
        assert services.build_score_chunk(build_id=build.pk, start=start, stop=stop) == 0

    def test_chunks_are_equal(self):
        assert pipeline.chunk_spans(6040, 1000) == [(0, 863), (863, 1726), (1726, 2589), (2589, 3451),
                                                     (3451, 4314), (4314, 5177), (5177, 6040)]
        assert pipeline.chunk_spans(8, 3) == [(0, 3), (3, 5), (5, 8)]
        assert pipeline.chunk_spans(0, 3) == []


class TestFactorScoring:
    def test_build_scores_training_users_from_their_learned_factors(self, world, settings, testapp_settings):
        import numpy as np

        settings.RECOMMENDATIONS = {**testapp_settings, "ALGORITHM": "ials",
                                    "ALGORITHM_PARAMS": {"factors": 4, "iterations": 3, "random_state": 0}}
        build = services.full_build_run()
        state = services.build_state(build.pk)
        model = state.model
        for position, key in enumerate(state.user_keys):
            stored = list(UserRecommendation.objects.filter(build=build, user_id=rows.user_pk(key))
                          .order_by("rank").values_list("object_id", "score"))
            scores = model.user_factors_[position] @ model.item_factors_.T
            scores[state.user_items[position].indices] = -np.inf
            scores[state.negatives[position].indices] = -np.inf
            best = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > 0][: len(stored)]
            assert [object_id for object_id, _ in stored] == [state.item_map.key(i)[1] for i in best]
            np.testing.assert_allclose([s for _, s in stored], scores[best], rtol=1e-5, atol=1e-6)
            # Folding the history in again gives other factors (the fit's last user step preceded its last item step).
            folded = model.score(state.user_items[position])[0]
            assert not np.allclose(folded, model.user_factors_[position] @ model.item_factors_.T)

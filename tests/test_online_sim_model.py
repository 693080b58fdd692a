"""Tests of the online simulation's pure parts: the held-out split of goodbooks readers and the click model."""
from __future__ import annotations

import gzip
import math

import pytest

from benchmarks.online_sim_model import ClickModel, Reader, activities, examination, heldout_split, ratings_read


def _ratings(n_users: int = 30, n_books: int = 40) -> list[tuple[str, str, int]]:
    # Reader u rates books u .. u+29 (mod n_books); every third rating is a 2, the others 4 or 5.
    return [(str(u), str((u + k) % n_books), 2 if k % 3 == 0 else 4 + k % 2)
            for u in range(n_users) for k in range(30)]


class HeldoutSplitTests:
    def test_holds_out_only_positives_of_the_sampled_readers(self):
        ratings = _ratings()
        split = heldout_split(ratings, n_readers=10, fraction=0.3, seed=1)
        assert len(split.wants) == 10
        stars = {(u, b): s for u, b, s in ratings}
        for user, wants in split.wants.items():
            assert wants and all(stars[user, b] >= 4 and stars[user, b] == s for b, s in wants.items())
            assert len(wants) == round(0.3 * 20)

    def test_train_is_everything_else(self):
        ratings = _ratings()
        split = heldout_split(ratings, n_readers=10, seed=1)
        held = {(u, b) for u, wants in split.wants.items() for b in wants}
        assert set(split.train) | {(u, b, s) for u, b, s in ratings if (u, b) in held} == set(ratings)
        assert not held & {(u, b) for u, b, _ in split.train}

    def test_same_seed_same_split_other_seed_other_split(self):
        ratings = _ratings()
        assert heldout_split(ratings, n_readers=10, seed=3).wants == heldout_split(ratings, n_readers=10, seed=3).wants
        assert heldout_split(ratings, n_readers=10, seed=3).wants != heldout_split(ratings, n_readers=10, seed=4).wants

    def test_held_out_books_are_random_not_the_first_in_file_order(self):
        # goodbooks v1 is sorted by book (popularity): its order is no time proxy.
        ratings = _ratings()
        split = heldout_split(ratings, n_readers=10, seed=1)
        in_file = {u: [b for v, b, s in ratings if v == u and s >= 4] for u in split.wants}
        for order in (in_file, {u: sorted(books) for u, books in in_file.items()}):
            assert any(set(wants) != set(order[u][:len(wants)]) for u, wants in split.wants.items())

    def test_short_histories_are_dropped(self):
        ratings = _ratings() + [("999", "1", 5), ("999", "2", 5)]
        split = heldout_split(ratings, n_readers=100, seed=0)
        assert "999" not in split.wants and all(u != "999" for u, _, _ in split.train)
        assert split.readers == sorted(split.wants, key=int)

    def test_ratings_read_keeps_the_first_of_a_repeated_pair(self, tmp_path):
        path = tmp_path / "ratings.csv.gz"
        with gzip.open(path, "wt") as handle:
            handle.write("book_id,user_id,rating\n1,7,5\n1,7,2\n2,7,3\n3,8,4\n")
        assert ratings_read(path) == [("7", "1", 5), ("7", "2", 3), ("8", "3", 4)]
        assert ratings_read(path, books={"2", "3"}) == [("7", "2", 3), ("8", "3", 4)]


class ClickModelTests:
    def test_examination_falls_with_rank(self):
        assert examination(1) == 1.0
        assert examination(3) == pytest.approx(0.5)
        assert all(examination(r) > examination(r + 1) for r in range(1, 20))
        with pytest.raises(ValueError):
            examination(0)

    def test_activity_scales_examination_up_to_certainty(self):
        assert examination(3, activity=0.5) == pytest.approx(0.25)
        assert examination(1, activity=3.0) == 1.0 and examination(7, activity=3.0) == 1.0
        keen = Reader("1", wants={"b": 5}, activity=2.0)
        model = ClickModel(p_want=0.5, p_other=0.1)
        assert model.expected_by_position(["a", "b", "c"], keen) == pytest.approx([0.1, 0.5, 0.1])

    def test_activity_is_ratings_over_the_median_reader(self):
        rows = [("1", str(b), 4) for b in range(10)] + [("2", str(b), 4) for b in range(20)]
        rows += [("3", str(b), 4) for b in range(40)] + [("4", "1", 5)]
        assert activities(rows, ["1", "2", "3"]) == {"1": 0.5, "2": 1.0, "3": 2.0}

    def test_expected_clicks_is_examination_times_relevance(self):
        model = ClickModel(p_want=0.5, p_other=0.1)
        reader = Reader("1", wants={"b": 5})
        expected = 0.1 * examination(1) + 0.5 * examination(2) + 0.1 * examination(3)
        assert model.expected_clicks(["a", "b", "c"], reader) == pytest.approx(expected)
        assert model.expected_by_position(["a", "b", "c"], reader) == pytest.approx(
            [0.1 * examination(1), 0.5 * examination(2), 0.1 * examination(3)])

    def test_drawn_clicks_match_the_expectation(self):
        model = ClickModel(p_want=0.6, p_other=0.05, seed=7)
        reader = Reader("1", wants={"b": 5, "e": 4})
        items = ["a", "b", "c", "d", "e", "f"]
        n = 20000
        mean = sum(len(model.clicks(items, reader)) for _ in range(n)) / n
        expected = model.expected_clicks(items, reader)
        assert abs(mean - expected) < 4 * math.sqrt(expected / n)

    def test_a_cascade_reader_leaves_the_list_after_a_wanted_click(self):
        model = ClickModel(p_want=0.5, p_other=0.1, cascade=True)
        reader = Reader("1", wants={"b": 5, "d": 4})
        e = [examination(r) for r in range(1, 5)]
        still = 1 - 0.5 * e[1]  # only a click on the wanted "b" ends the scan; "a" and "c" do not
        assert model.expected_by_position(["a", "b", "c", "d"], reader) == pytest.approx(
            [0.1 * e[0], 0.5 * e[1], still * 0.1 * e[2], still * 0.5 * e[3]])
        sure = ClickModel(p_want=1.0, p_other=1.0, cascade=True)
        assert sure.clicks(["a", "b", "c", "d"], Reader("1", wants={"b": 5}, activity=10.0)) == [1, 2]

    def test_drawn_cascade_clicks_match_the_expectation_at_every_position(self):
        model = ClickModel(p_want=0.6, p_other=0.05, seed=3, cascade=True)
        reader = Reader("1", wants={"b": 5, "c": 4, "e": 4})
        items = ["a", "b", "c", "d", "e", "f"]
        n = 20000
        counts = [0] * len(items)
        for _ in range(n):
            for rank in model.clicks(items, reader):
                counts[rank - 1] += 1
        for count, p in zip(counts, model.expected_by_position(items, reader)):
            assert abs(count / n - p) < 4 * math.sqrt(p * (1 - p) / n) + 1e-9

    def test_a_wanted_item_is_consumed_once(self):
        model = ClickModel(p_want=1.0, p_other=0.0, p_not_interested=1.0, seed=0)
        reader = Reader("1", wants={"b": 4})
        visit = model.visit("b", reader)
        assert visit.stars == 4 and visit.progress >= 0.7 and not visit.not_interested
        assert not reader.relevant("b") and model.clicks(["b"], reader) == []
        other = model.visit("z", reader)
        assert other.stars is None and other.progress < 0.1 and other.not_interested

    def test_probabilities_are_checked(self):
        with pytest.raises(ValueError):
            ClickModel(p_want=1.5)

"""Tests for the database-free CLI (python -m recommendations): round trips via subprocess and bad CSV input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recommendations.cli import CSVError, read_interactions

ROOT = Path(__file__).resolve().parents[3]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the CLI must not need Django settings
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "recommendations", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=120,
    )


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def train_csv(tmp_path: Path) -> Path:
    # 8 users, 6 items, two taste groups (items a-c and d-f); ids are strings, one rating column
    rows = ["user,item,rating,timestamp"]
    groups = {"u1": "abc", "u2": "ab", "u3": "bc", "u4": "ac", "u5": "def", "u6": "de", "u7": "ef", "u8": "df"}
    t = 0
    for user, items in groups.items():
        for item in items:
            t += 1
            rows.append(f"{user},{item},{4 + (t % 2)},{1_600_000_000 + t}")
    return write(tmp_path / "TRAIN.csv", "\n".join(rows) + "\n")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_main_module_does_not_import_django():
    code = (
        "import sys, runpy; sys.argv=['x', '--help'];\n"
        "try:\n    runpy.run_module('recommendations', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django imported'\n"
        "print('ok')"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


@pytest.mark.parametrize("algorithm", ["toppop", "itemknn"])
def test_recommend_round_trip(tmp_path: Path, train_csv: Path, algorithm: str):
    out = tmp_path / "RECS.csv"
    res = run_cli("recommend", "--train", str(train_csv), "--k", "2", "--algorithm", algorithm, "--output", str(out))
    assert res.returncode == 0, res.stderr
    rows = read_csv(out)
    assert list(rows[0]) == ["user", "item", "rank", "score"]
    train = {(r["user"], r["item"]) for r in read_csv(train_csv)}
    users = {u for u, _ in train}
    by_user: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_user.setdefault(r["user"], []).append(r)
    # every train user gets k items, none of them seen, ranks 1..k with non-increasing scores
    assert set(by_user) == users
    for user, recs in by_user.items():
        assert [int(r["rank"]) for r in recs] == [1, 2]
        assert all((user, r["item"]) not in train for r in recs)
        scores = [float(r["score"]) for r in recs]
        assert scores == sorted(scores, reverse=True)
    if algorithm == "itemknn":
        # u2 read a, b: its best unseen item is c, from its own group
        assert by_user["u2"][0]["item"] == "c"


def test_recommend_k_larger_than_catalogue(tmp_path: Path, train_csv: Path):
    out = tmp_path / "RECS.csv"
    res = run_cli("recommend", "--train", str(train_csv), "--k", "50", "--algorithm", "itemknn", "--output", str(out))
    assert res.returncode == 0, res.stderr
    rows = read_csv(out)
    # u1 has 3 of 6 items -> exactly 3 recommendations; u2 has 2 -> 4
    assert sum(r["user"] == "u1" for r in rows) == 3
    assert sum(r["user"] == "u2" for r in rows) == 4


def test_evaluate_round_trip_json(tmp_path: Path, train_csv: Path):
    test = write(tmp_path / "TEST.csv", "user,item\nu2,c\nu6,f\nnew,a\n")
    neg = write(tmp_path / "NEG.csv", "user,item\nu2,d\nu2,e\nu6,a\nu6,b\n")
    res = run_cli(
        "evaluate", "--train", str(train_csv), "--test", str(test), "--negatives", str(neg),
        "--k", "1,2", "--algorithms", "toppop,itemknn", "--json",
    )
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["protocol"] == "sampled"
    assert payload["n_test_users_without_train"] == 1
    by_name = {r["algorithm"]: r for r in payload["results"]}
    assert by_name["itemknn"]["HR@1"] == 1.0
    assert by_name["itemknn"]["n_users"] == 2
    for r in payload["results"]:
        assert {"HR@2", "NDCG@2", "Recall@2", "Precision@2", "MAP@2", "Coverage@2", "fit_seconds", "score_seconds"} <= set(r)
    # full ranking without negatives
    res = run_cli("evaluate", "--train", str(train_csv), "--test", str(test), "--k", "5", "--algorithms", "itemknn")
    assert res.returncode == 0, res.stderr
    assert "protocol: full" in res.stdout


def test_evaluate_tune_writes_params_that_recommend_loads(tmp_path: Path, train_csv: Path):
    test = write(tmp_path / "TEST.csv", "user,item\nu2,c\nu6,f\n")
    params = tmp_path / "PARAMS.json"
    res = run_cli(
        "evaluate", "--train", str(train_csv), "--test", str(test), "--k", "2", "--algorithms", "itemknn",
        "--tune", "--tune-iter", "2", "--params-out", str(params), "--json", "--quiet",
    )
    assert res.returncode == 0, res.stderr
    saved = json.loads(params.read_text())
    assert saved["algorithm"] == "itemknn" and isinstance(saved["params"], dict)
    out = tmp_path / "RECS.csv"
    res = run_cli("recommend", "--train", str(train_csv), "--params", str(params), "--k", "1", "--output", str(out))
    assert res.returncode == 0, res.stderr
    assert len(read_csv(out)) == 8


def test_evaluate_tune_auto_writes_a_blend_that_recommend_loads(tmp_path: Path, train_csv: Path):
    test = write(tmp_path / "TEST.csv", "user,item\nu2,c\nu6,f\n")
    params = tmp_path / "PARAMS.json"
    res = run_cli(
        "evaluate", "--train", str(train_csv), "--test", str(test), "--k", "2", "--algorithms", "auto",
        "--tune", "--tune-iter", "1", "--params-out", str(params), "--json", "--quiet",
    )
    assert res.returncode == 0, res.stderr
    saved = json.loads(params.read_text())
    assert saved["algorithm"] == "auto"
    assert saved["params"]["weights"] and all(w > 0 for w in saved["params"]["weights"].values())
    assert json.loads(res.stdout)["results"][0]["params"] == saved["params"]
    out = tmp_path / "RECS.csv"
    res = run_cli("recommend", "--train", str(train_csv), "--params", str(params), "--k", "1", "--output", str(out))
    assert res.returncode == 0, res.stderr
    assert len(read_csv(out)) == 8


BAD_INPUTS = [
    ("user,item,rating\nu1,a,5\nu1,b,abc\n", "BAD.csv:3: rating 'abc' is not a number"),
    ("user,rating\nu1,5\n", "BAD.csv:1: missing column 'item'"),
    ("", "BAD.csv:1: file is empty"),
    ("user,item\n", "BAD.csv:2: no data rows"),
    ("user,item\nu1,a\nu2\n", "BAD.csv:3: expected 2 fields, found 1"),
    ("user,item\nu1,a\n,b\n", "BAD.csv:3: empty user"),
    ("user,item,timestamp\nu1,a,yesterday\n", "BAD.csv:2: timestamp 'yesterday'"),
    ("user,item,rating\nu1,a,nan\n", "BAD.csv:2: rating 'nan' is not a number"),
    (b"user,item\nu1,a\nu2,caf\xe9\n", "BAD.csv:3: not valid UTF-8"),
]


@pytest.mark.parametrize("content,message", BAD_INPUTS)
def test_bad_csv_names_file_and_line(tmp_path: Path, content, message: str):
    bad = write(tmp_path / "BAD.csv", content)
    with pytest.raises(CSVError) as info:
        read_interactions(str(bad))
    assert message in str(info.value)


def test_bad_csv_exits_non_zero_with_message(tmp_path: Path):
    bad = write(tmp_path / "TRAIN.csv", "user,item,rating\n" + "u,a,5\n" * 15 + "u,b,abc\n")
    res = run_cli("recommend", "--train", str(bad), "--algorithm", "toppop", "--output", str(tmp_path / "o.csv"))
    assert res.returncode != 0
    assert "TRAIN.csv:17: rating 'abc' is not a number" in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_file_and_unknown_algorithm(tmp_path: Path, train_csv: Path):
    res = run_cli("recommend", "--train", str(tmp_path / "nope.csv"), "--algorithm", "toppop")
    assert res.returncode != 0 and "nope.csv: file not found" in res.stderr
    res = run_cli("recommend", "--train", str(train_csv), "--algorithm", "nosuch")
    assert res.returncode != 0 and "nosuch" in res.stderr and "Traceback" not in res.stderr
    test = write(tmp_path / "TEST.csv", "user,item\nu1,zz\n")
    res = run_cli("evaluate", "--train", str(train_csv), "--test", str(test), "--k", "a,b", "--algorithms", "toppop")
    assert res.returncode != 0 and "--k" in res.stderr


def test_quoted_ids_with_commas_and_bom(tmp_path: Path):
    path = write(tmp_path / "T.csv", '\ufeffUser,Item\n"Doe, Jane","Book, The"\n')
    data = read_interactions(str(path))
    assert data.users == ["Doe, Jane"] and data.items == ["Book, The"]


def test_evaluate_tune_folds_and_summed_metric_reach_the_tuner(tmp_path: Path, train_csv: Path):
    test = write(tmp_path / "TEST.csv", "user,item\nu2,c\nu6,f\n")
    params = tmp_path / "PARAMS.json"
    res = run_cli(
        "evaluate", "--train", str(train_csv), "--test", str(test), "--k", "2", "--algorithms", "auto",
        "--tune", "--tune-iter", "1", "--tune-folds", "2", "--tune-metric", "HR@2+NDCG@2",
        "--params-out", str(params), "--json", "--quiet",
    )
    assert res.returncode == 0, res.stderr
    saved = json.loads(params.read_text())
    assert saved["metric"] == "HR@2+NDCG@2"
    assert "2 independent carvings" in saved["validation"]
    assert 0.0 <= saved["validation_score"] <= 2.0
    res = run_cli(
        "evaluate", "--train", str(train_csv), "--test", str(test), "--algorithms", "itemknn", "--tune",
        "--tune-folds", "0", "--quiet",
    )
    assert res.returncode == 1 and "n_folds must be at least 1" in res.stderr


def test_recommend_help_lists_the_algorithm_names():
    from recommendations.algorithms import ALGORITHMS

    res = run_cli("recommend", "--help")
    assert res.returncode == 0
    for name in ALGORITHMS:
        assert name in res.stdout
    assert "--no-tune" in res.stdout


def test_evaluate_default_list_skips_ease_over_its_item_limit_and_keeps_the_others(tmp_path: Path, train_csv: Path):
    # the negatives name 20,001 distinct items, so the catalogue is above EASE^R's limit
    test = write(tmp_path / "TEST.csv", "user,item\nu2,c\nu6,f\n")
    negatives = ["user,item"] + [f"u2,n{j}" for j in range(20_001)]
    neg = write(tmp_path / "NEG.csv", "\n".join(negatives) + "\n")
    res = run_cli("evaluate", "--train", str(train_csv), "--test", str(test), "--negatives", str(neg),
                  "--k", "2", "--json", "--quiet")
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    assert [r["algorithm"] for r in payload["results"]] == ["toppop", "itemknn", "rp3beta", "ials", "auto"]
    assert [s["algorithm"] for s in payload["skipped"]] == ["ease"]
    assert "EASE refuses 20,007 items" in payload["skipped"][0]["reason"]
    table = run_cli("evaluate", "--train", str(train_csv), "--test", str(test), "--negatives", str(neg),
                    "--k", "2", "--algorithms", "toppop,ease", "--quiet")
    assert table.returncode == 0 and "skipped ease: EASE refuses" in table.stdout
    alone = run_cli("evaluate", "--train", str(train_csv), "--test", str(test), "--negatives", str(neg),
                    "--k", "2", "--algorithms", "ease")
    assert alone.returncode == 1 and "no algorithm could be evaluated" in alone.stderr


def _many_users_csv(tmp_path: Path) -> tuple[Path, Path, set[tuple[str, str]]]:
    """60 users in two taste groups (enough for auto to tune), and one held-out item each for 20 of them."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows, test, held = ["user,item,timestamp"], ["user,item"], set()
    for u in range(60):
        pool = [f"i{j}" for j in (range(0, 15) if u % 2 else range(15, 30))]
        items = rng.choice(pool, size=6, replace=False).tolist()
        if u < 20:
            held.add((f"u{u}", items[-1]))
            test.append(f"u{u},{items[-1]}")
            items = items[:-1]
        rows += [f"u{u},{item},{1_600_000_000 + 10 * u + t}" for t, item in enumerate(items)]
    train_csv = write(tmp_path / "TRAIN.csv", "\n".join(rows) + "\n")
    return train_csv, write(tmp_path / "TEST.csv", "\n".join(test) + "\n"), held


def test_evaluate_auto_tunes_on_train_only(tmp_path: Path, monkeypatch):
    """A spy on the tuner: it sees the training matrix and timestamps, and no held-out test pair."""
    from recommendations.cli import main

    from .synthetic import record_tuning

    train_csv, test_csv, held = _many_users_csv(tmp_path)
    seen = record_tuning(monkeypatch)
    out = tmp_path / "out.json"
    with open(out, "w") as fh:
        monkeypatch.setattr(sys, "stdout", fh)
        status = main(["evaluate", "--train", str(train_csv), "--test", str(test_csv), "--k", "5",
                       "--algorithms", "auto", "--json", "--quiet"])
    monkeypatch.undo()
    assert status == 0 and len(seen) == 1
    payload = json.loads(out.read_text())
    assert payload["results"][0]["params"]["tuned"]["tuned"] is True
    matrix, stamps = seen[0]
    assert stamps is not None and stamps.nnz == matrix.nnz  # the validation split is the latest item per user
    # rebuild the id order the CLI used (first appearance: TRAIN, then TEST) and look for the held-out pairs
    users, items = {}, {}
    for r in read_csv(train_csv) + read_csv(test_csv):
        users.setdefault(r["user"], len(users))
        items.setdefault(r["item"], len(items))
    train_pairs = {(r["user"], r["item"]) for r in read_csv(train_csv)}
    assert matrix.nnz == len(train_pairs)
    for user, item in held:
        assert matrix[users[user], items[item]] == 0, f"held-out ({user}, {item}) reached tuning"


def test_recommend_auto_tunes_unless_no_tune(tmp_path: Path):
    train_csv, _, _ = _many_users_csv(tmp_path)
    res = run_cli("recommend", "--train", str(train_csv), "--k", "3", "--output", str(tmp_path / "R.csv"))
    assert res.returncode == 0, res.stderr
    assert "tuning" in res.stderr and "chose" in res.stderr
    res = run_cli("recommend", "--train", str(train_csv), "--k", "3", "--no-tune", "--output", str(tmp_path / "R.csv"))
    assert res.returncode == 0, res.stderr
    assert "tuning" not in res.stderr and "'tune': False" in res.stderr


def test_event_weights_sum_the_rows_of_a_pair(tmp_path: Path):
    from recommendations.cli.inputs import IdIndex, interaction_matrix, interaction_weights, parse_event_weights

    path = write(tmp_path / "E.csv", "user,item,event\nu1,a,view\nu1,a,VIEW\nu1,a,like\nu1,b,view\nu2,b,like\n")
    data = read_interactions(str(path))
    assert data.events == ["view", "view", "like", "view", "like"]
    users, items = IdIndex(), IdIndex()
    rows, cols = users.add_all(data.users), items.add_all(data.items)
    weights = parse_event_weights("view=1, like=4")
    X = interaction_matrix(rows, cols, interaction_weights(data, "event", weights), (2, 2), "event")
    assert X.toarray().tolist() == [[6.0, 1.0], [0.0, 4.0]]  # two views and a like: 1 + 1 + 4


def test_event_weights_cli_errors_and_help(tmp_path: Path):
    path = write(tmp_path / "E.csv", "user,item,event\nu1,a,view\nu1,b,like\nu2,a,share\nu2,c,view\n")
    res = run_cli("recommend", "--train", str(path), "--algorithm", "itemknn", "--event-weights", "view=1,like=4")
    assert res.returncode == 1 and "E.csv:4: event 'share' has no weight in --event-weights" in res.stderr
    res = run_cli("recommend", "--train", str(path), "--algorithm", "itemknn", "--event-weights", "view=1,like")
    assert res.returncode == 1 and "--event-weights: 'like' is not TYPE=NUMBER" in res.stderr
    res = run_cli("recommend", "--train", str(path), "--algorithm", "itemknn", "--k", "1",
                  "--event-weights", "view=1,like=4,share=2", "--output", str(tmp_path / "R.csv"))
    assert res.returncode == 0, res.stderr
    no_event = write(tmp_path / "N.csv", "user,item\nu1,a\n")
    res = run_cli("recommend", "--train", str(no_event), "--algorithm", "toppop", "--event-weights", "view=1")
    assert res.returncode == 1 and "needs an 'event' column" in res.stderr
    helptext = run_cli("recommend", "--help").stdout
    assert "--event-weights" in helptext and "summed" in helptext


def test_evaluate_tunes_auto_for_the_protocol_it_scores(tmp_path: Path, monkeypatch):
    """With --negatives, auto's validation ranks against as many sampled negatives; without, by full ranking."""
    from recommendations.algorithms import auto as auto_module
    from recommendations.cli import main

    train_csv, test_csv, held = _many_users_csv(tmp_path)
    neg_csv = write(tmp_path / "NEG.csv", "user,item\n" + "".join(
        f"{user},i{j}\n" for user, _ in sorted(held) for j in range(30) if (user, f"i{j}") not in held)[:-1] + "\n")
    asked = []
    real = auto_module.tune_auto
    monkeypatch.setattr(auto_module, "tune_auto", lambda train, **kw: asked.append(kw["n_negatives"]) or real(train, **kw))
    protocols = []
    for extra in (["--negatives", str(neg_csv)], []):
        out = tmp_path / "out.json"
        with open(out, "w") as fh:
            monkeypatch.setattr(sys, "stdout", fh)
            status = main(["evaluate", "--train", str(train_csv), "--test", str(test_csv), *extra, "--k", "5",
                           "--algorithms", "auto", "--json", "--quiet"])
            monkeypatch.setattr(sys, "stdout", sys.__stdout__)
        assert status == 0
        protocols.append(json.loads(out.read_text())["results"][0]["params"]["tuned"]["protocol"])
    assert asked == [29, None]
    assert protocols == ["29 sampled negatives", "full ranking"]


def test_columns_name_headers_spelled_otherwise(tmp_path: Path):
    # the course's candy file: item,user,review (a rating under another name, columns in another order)
    path = write(tmp_path / "C.csv", "item,reviewer,review\nMars,ann,5\nTwix,ann,2\nMars,bob,4\n")
    from recommendations.cli.inputs import parse_columns

    data = read_interactions(str(path), columns=parse_columns("user=reviewer, rating=Review"))
    assert data.users == ["ann", "ann", "bob"] and data.items == ["Mars", "Twix", "Mars"]
    assert data.ratings.tolist() == [5.0, 2.0, 4.0]
    with pytest.raises(CSVError, match="C.csv:1: missing column 'stars' \\(--columns rating=stars\\)"):
        read_interactions(str(path), columns=parse_columns("user=reviewer,rating=stars"))
    with pytest.raises(CSVError, match="C.csv:1: missing column 'user'"):
        read_interactions(str(path))
    with pytest.raises(CSVError, match="C.csv:1: column 'item' would be both user and item"):
        read_interactions(str(path), columns=parse_columns("user=item"))
    with pytest.raises(CSVError, match="C.csv:1: column 'review' would be both user and rating"):
        read_interactions(str(path), columns=parse_columns("user=review,rating=review"))


def test_a_users_x_items_table_is_named_as_such(tmp_path: Path):
    # the course's alcohol.csv: one row per person, one column per drink, the first header cell empty
    path = write(tmp_path / "W.csv", ",Beer,Water,Negroni\nFinn,5,5,\nMarina,4,5,2\n")
    with pytest.raises(CSVError, match="W.csv:1: missing column 'user' .*looks like a users x items table"):
        read_interactions(str(path))


@pytest.mark.parametrize("text,message", [
    ("rating", "'rating' is not ROLE=HEADER"),
    ("score=review", "'score' is not one of user, item, rating, timestamp, event"),
])
def test_bad_columns_option_is_a_usage_error(text: str, message: str):
    from recommendations.cli.inputs import parse_columns

    with pytest.raises(CSVError, match=message):
        parse_columns(text)


def test_recommend_and_evaluate_read_renamed_columns(tmp_path: Path, train_csv: Path):
    renamed = write(tmp_path / "R.csv", train_csv.read_text().replace("user,item,rating", "who,what,stars", 1))
    out = tmp_path / "out.csv"
    res = run_cli("recommend", "--train", str(renamed), "--algorithm", "itemknn", "--weight", "rating",
                  "--columns", "user=who,item=what,rating=stars", "--output", str(out))
    assert res.returncode == 0, res.stderr
    assert {r["user"] for r in read_csv(out)} == {f"u{n}" for n in range(1, 9)}
    res = run_cli("recommend", "--train", str(renamed), "--algorithm", "itemknn", "--weight", "rating",
                  "--columns", "user=who,item=what")
    assert res.returncode == 1 and "needs a 'rating' column (or --columns rating=HEADER)" in res.stderr
    test = write(tmp_path / "TEST.csv", "who,what\nu2,c\nu6,f\n")
    res = run_cli("evaluate", "--train", str(renamed), "--test", str(test), "--k", "2", "--algorithms", "itemknn",
                  "--columns", "user=who,item=what", "--json", "--quiet")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["results"][0]["n_users"] == 2


def test_evaluate_tunes_auto_as_recommend_does_whatever_items_only_test_holds(tmp_path: Path):
    # evaluate indexes TEST's items too; those empty columns must not change what auto chooses
    import numpy as np

    rng = np.random.default_rng(5)
    rows = ["user,item"]
    for u in range(60):
        group = u % 3
        for j in range(24):
            if rng.random() < (0.4 if j // 8 == group else 0.05):
                rows.append(f"u{u},i{j}")
    train = write(tmp_path / "TRAIN.csv", "\n".join(rows) + "\n")
    test = write(tmp_path / "TEST.csv", "user,item\n" + "".join(f"u{u},new{u % 20}\n" for u in range(60)))
    res = run_cli("recommend", "--train", str(train), "--output", str(tmp_path / "R.csv"))
    assert res.returncode == 0, res.stderr
    chosen = json.loads(res.stderr.split("chose ", 1)[1].rsplit("); wrote", 1)[0])
    res = run_cli("evaluate", "--train", str(train), "--test", str(test), "--algorithms", "auto", "--json", "--quiet")
    assert res.returncode == 0, res.stderr
    tuned = json.loads(res.stdout)["results"][0]["params"]["tuned"]
    assert tuned["params"] == chosen and tuned["items"] == 24

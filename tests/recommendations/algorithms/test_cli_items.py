"""The command line with ITEMS.csv: cold candidates are recommended, bad rows name their line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from recommendations.cli import CSVError, main
from recommendations.cli.items import read_items

PARAMS = {"algorithm": "cold_hybrid", "params": {"factors": 8, "iterations": 10, "regularization": 0.1,
                                                  "alpha": 5.0, "random_state": 0}}


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Even users read astronomy (a0-a7), odd users cooking (c0-c7); a_new and c_new are in ITEMS only."""
    rows = ["user,item"]
    for user in range(20):
        prefix = "a" if user % 2 == 0 else "c"
        rows += [f"u{user},{prefix}{(user + k) % 8}" for k in range(4)]
    items = ["item,text,tags,authors"]
    items += [f"a{i},galaxy telescope star survey {i},space|science,Sagan" for i in range(8)]
    items += [f"c{i},bread kitchen recipe oven {i},food,Child" for i in range(8)]
    items += ["a_new,a galaxy survey with a new telescope,space,Sagan|Hubble",
              "c_new,\"bread, soup and an oven\",food|home,Child"]
    return {
        "train": write(tmp_path / "TRAIN.csv", "\n".join(rows) + "\n"),
        "items": write(tmp_path / "ITEMS.csv", "\n".join(items) + "\n"),
        "params": write(tmp_path / "params.json", json.dumps(PARAMS)),
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_recommend_places_new_items_with_their_readers(tmp_path: Path, files):
    out = tmp_path / "RECS.csv"
    code = main(["recommend", "--train", str(files["train"]), "--items", str(files["items"]), "--k", "5",
                 "--params", str(files["params"]), "--output", str(out)])
    assert code == 0
    recs = read_csv(out)
    by_user: dict[str, list[str]] = {}
    for row in recs:
        by_user.setdefault(row["user"], []).append(row["item"])
    assert all(len(items) == 5 for items in by_user.values())
    astronomy = [items for user, items in by_user.items() if int(user[1:]) % 2 == 0]
    cooking = [items for user, items in by_user.items() if int(user[1:]) % 2 == 1]
    assert all("a_new" in items and "c_new" not in items for items in astronomy)
    assert all("c_new" in items and "a_new" not in items for items in cooking)


def test_recommend_auto_with_items_uses_the_cold_hybrid(tmp_path: Path, files, capsys):
    out = tmp_path / "RECS.csv"
    code = main(["recommend", "--train", str(files["train"]), "--items", str(files["items"]), "--k", "3",
                 "--algorithm", "auto", "--output", str(out)])
    assert code == 0
    assert "recommend: cold_hybrid" in capsys.readouterr().err
    assert len(read_csv(out)) == 20 * 3


def test_without_items_new_items_are_never_recommended(tmp_path: Path, files):
    out = tmp_path / "RECS.csv"
    assert main(["recommend", "--train", str(files["train"]), "--k", "5", "--params", str(files["params"]),
                 "--output", str(out)]) == 0
    assert not {"a_new", "c_new"} & {row["item"] for row in read_csv(out)}


def test_evaluate_with_items_scores_cold_test_items(tmp_path: Path, files, capsys):
    test = write(tmp_path / "TEST.csv", "user,item\n" + "".join(
        f"u{u},{'a_new' if u % 2 == 0 else 'c_new'}\n" for u in range(20)))
    code = main(["evaluate", "--train", str(files["train"]), "--test", str(test), "--items", str(files["items"]),
                 "--algorithms", "cold_hybrid,toppop", "--params", str(files["params"]), "--k", "5", "--json"])
    assert code == 0
    results = {r["algorithm"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert results["cold_hybrid"]["HR@5"] == 1.0
    assert results["toppop"]["HR@5"] < 0.5


BAD_ITEMS = [
    ("item,title\nx,hello\n", "ITEMS.csv:1: missing column 'text'"),
    ("item,text\nx,hello\ny\n", "ITEMS.csv:3: expected 2 fields, found 1"),
    ("item,text\nx,hello\n ,world\n", "ITEMS.csv:3: empty item"),
    ("item,text\nx,hello\ny,there\nx,again\n", "ITEMS.csv:4: item 'x' repeats line 2"),
    ("item,text\n", "ITEMS.csv:2: no data rows"),
    (b"item,text\nx,caf\xe9\n", "ITEMS.csv:2: not valid UTF-8"),
    ("", "ITEMS.csv:1: file is empty"),
]


@pytest.mark.parametrize("content,message", BAD_ITEMS)
def test_bad_items_name_the_line(tmp_path: Path, content, message: str):
    with pytest.raises(CSVError) as info:
        read_items(str(write(tmp_path / "ITEMS.csv", content)))
    assert message in str(info.value)


def test_bad_items_exit_non_zero_with_the_line(tmp_path: Path, files, capsys):
    bad = write(tmp_path / "ITEMS.csv", "item,text,tags\nx,hello,a|b\ny,world\n")
    code = main(["recommend", "--train", str(files["train"]), "--items", str(bad), "--algorithm", "cold_hybrid"])
    assert code == 1
    assert "ITEMS.csv:3: expected 3 fields, found 2" in capsys.readouterr().err


def test_tags_and_authors_split_on_the_bar(tmp_path: Path):
    items = read_items(str(write(tmp_path / "ITEMS.csv", "item,text,tags,authors\nx,hi, a | b ,Ann|Bo\n")))
    assert items.records[0].tags == ["a", "b"] and items.records[0].authors == ["Ann", "Bo"]


def test_unknown_encoder_is_an_error_not_a_traceback(tmp_path: Path, files, capsys):
    code = main(["recommend", "--train", str(files["train"]), "--items", str(files["items"]),
                 "--algorithm", "cold_hybrid", "--encoder", "words"])
    assert code == 1
    assert "unknown encoder 'words'" in capsys.readouterr().err

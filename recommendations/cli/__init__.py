"""Provides the database-free command line: ``python -m recommendations recommend|evaluate`` on CSV files."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

# Deliberately NO Django import here (nor in recommendations/__init__.py): the CLI runs without settings.
from .commands import cmd_evaluate, cmd_recommend
from .inputs import WEIGHTINGS, CSVError, Interactions, read_interactions

__all__ = ["CSVError", "Interactions", "read_interactions", "build_parser", "main"]

WEIGHT_HELP = (
    "interaction weight of a (user, item) pair: binary (1; the default), count (its rows), rating (the mean "
    "of its ratings), or event (the sum of its rows' event weights; the default with --event-weights)"
)
COLUMNS_HELP = (
    "headers that hold the columns under other names, e.g. rating=review or user=reviewer,item=title "
    "(roles: user, item, rating, timestamp, event; a header named here must exist)"
)
EVENT_HELP = (
    "weights of the 'event' column's types, e.g. view=1,like=4,bookmark=3: repeated rows of a pair are "
    "summed, so three views and a like weigh 7; a type not listed is an error naming its line"
)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m recommendations``."""
    from recommendations.algorithms import ALGORITHMS

    names = ", ".join(ALGORITHMS)
    parser = argparse.ArgumentParser(prog="python -m recommendations", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    rec = sub.add_parser("recommend", help="fit on TRAIN.csv and write the top-k items per user",
                         description=f"Fit on TRAIN.csv and write the top-k unseen items per user. "
                                     f"Algorithms: {names}.")
    rec.add_argument("--train", required=True, help="CSV with header: user,item[,rating][,timestamp][,event]")
    rec.add_argument("--columns", default=None, metavar="ROLE=HEADER,...", help=COLUMNS_HELP)
    rec.add_argument("--k", type=int, default=10, help="items per user (default 10)")
    rec.add_argument("--algorithm", default=None, metavar="NAME",
                     help=f"one of: {names} (default: auto, or the one in --params)")
    rec.add_argument(
        "--params", default=None, help='JSON {"algorithm": name, "params": {...}} (e.g. from evaluate --tune)'
    )
    rec.add_argument("--no-tune", action="store_true",
                     help="auto: use its untuned defaults instead of tuning on a validation split of TRAIN")
    rec.add_argument("--output", default=None, help="output CSV user,item,rank,score (default: stdout)")
    rec.add_argument("--weight", choices=WEIGHTINGS, default=None, help=WEIGHT_HELP)
    rec.add_argument("--event-weights", default=None, metavar="TYPE=W,...", help=EVENT_HELP)
    _add_item_options(rec)
    rec.set_defaults(func=cmd_recommend)

    ev = sub.add_parser("evaluate", help="fit on TRAIN.csv and score the items of TEST.csv",
                        description=f"Fit each algorithm on TRAIN.csv and score TEST.csv. Algorithms: {names}.")
    ev.add_argument("--train", required=True)
    ev.add_argument("--test", required=True, help="CSV user,item of held-out positives")
    ev.add_argument("--columns", default=None, metavar="ROLE=HEADER,...",
                    help=COLUMNS_HELP + "; applies to every file given")
    ev.add_argument("--negatives", default=None,
                    help="CSV user,item of sampled negatives (sampled protocol; auto then tunes for it)")
    ev.add_argument("--k", default="5,10", help="cut-offs, e.g. 5,10")
    ev.add_argument("--algorithms", default="toppop,itemknn,rp3beta,ease,ials,auto",
                    help=f"comma-separated, from: {names}; one that refuses the data is skipped with its reason")
    ev.add_argument("--params", default=None, help="parameters file for the algorithm it names")
    ev.add_argument("--json", action="store_true", help="print the results as JSON")
    ev.add_argument("--weight", choices=WEIGHTINGS, default=None, help=WEIGHT_HELP)
    ev.add_argument("--event-weights", default=None, metavar="TYPE=W,...", help=EVENT_HELP)
    ev.add_argument("--tune", action="store_true",
                    help="tune each algorithm on a validation split of TRAIN (auto tunes itself without it)")
    ev.add_argument("--params-out", default=None, help="write the best tuned algorithm and parameters here")
    ev.add_argument("--tune-split", choices=("random", "time"), default="random")
    ev.add_argument("--tune-metric", default="NDCG@10",
                    help="validation objective: a metric (NDCG@10) or a sum of metrics (HR@10+NDCG@10)")
    ev.add_argument("--tune-folds", type=int, default=1,
                    help="independent random validation carvings of TRAIN averaged per candidate (each costs a fit)")
    ev.add_argument("--tune-iter", type=int, default=None, help="random-search budget per algorithm")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--quiet", action="store_true")
    _add_item_options(ev)
    ev.set_defaults(func=cmd_evaluate)
    return parser


def _add_item_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--items", default=None, metavar="ITEMS.csv",
                        help="CSV item,text[,tags][,authors] (tags and authors separated by |): items never in "
                             "TRAIN are cold candidates; with it, auto means cold_hybrid (recommend), and "
                             "cold_hybrid and hybrid learn from the items' content")
    parser.add_argument("--encoder", default=None, metavar="SPEC",
                        help="content encoder of --items, e.g. tfidf:1,tags:0.5,authors:0.5 (the default when "
                             "the columns exist); names: tfidf, lsa, tags, authors, sentence")
    parser.add_argument("--sentence-model", default=None, metavar="PATH",
                        help="a sentence-transformers model (a local directory) whose embeddings join the "
                             "features of --items; needs torch and sentence-transformers")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 bad input, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "params_out", None) and not args.tune:
        parser.error("--params-out needs --tune")
    try:
        return int(args.func(args))
    except CSVError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # e.g. an estimator refusing its input (EASE^R above its catalogue limit)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory (try another algorithm or a smaller catalogue)", file=sys.stderr)
        return 1

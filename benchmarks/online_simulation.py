"""Online simulation: goodbooks-10k readers use the real site, and its experiments are checked against the truth.

Run from the project root::

    .venv/bin/python benchmarks/online_simulation.py            # the default run, written to results/
    .venv/bin/python benchmarks/online_simulation.py --quick    # a smoke run (few readers, 3 days)

What it does:

1. Samples goodbooks-10k readers of the shipped catalogue (``benchmarks/online_sim_model.py``):
   a seeded random 30% of each simulated reader's 4-5 star ratings is held out as what they
   want; everything else is loaded into a throwaway SQLite database with the site's demo loader.
   Three experiments are defined on the home page's picks (``experiments.Experiment``): an A/A
   (both arms the default configuration, ``auto``), an A/B (``toppop`` control against the
   default) and a team-draft interleaving of the two; then one full build runs in this process,
   fitting the arms. The prepared database is kept (``--var-dir``) and copied for later runs.
2. Three phases, one experiment live in each, each with its own readers. Every simulated day each
   reader opens the home page with Django's test client (the real middleware, views, templates
   and impression recording, in process), examines its picks with a position bias
   ``1/log2(rank+1)`` (scaled by the reader's activity, their number of ratings over the median
   reader's, unless ``--activity uniform``) and clicks with probability ``p_want`` (a held-out book
   not yet consumed) or ``p_other``. A click follows the card's link (which carries the ``recommendation_id`` and
   position), posts the read beacon, and rates the book with its held-out stars (or, for an
   unwanted book, sometimes marks it "Not interested") through the site's endpoints.
3. Reads the per-reader, per-day impressions and clicks back from the app's rows (``Impression``,
   ``Attribution``) and computes, with the experiments' own code (``experiments.results``,
   ``experiments.assignment``, ``algorithms.experiments_stats``):
   A/A false-positive rates over many re-splits of the A/A readers (at the horizon, peeking at
   the fixed-horizon p every day, and reading the always-valid p every day); the A/B difference
   against the click model's true one; readers and impressions interleaving and A/B need for the
   same decision at equal power; the SRM check on a 55/45 split declared as 50/50.
4. Writes ``benchmarks/results/online_simulation.md`` (not with ``--quick``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import pickle
import platform
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.online_sim_model import ClickModel, activities, heldout_split, ratings_read  # noqa: E402
from benchmarks.online_sim_report import report  # noqa: E402
from benchmarks.online_sim_site import books_of_catalogue, environment_set  # noqa: E402

DATA = Path("/work/shared/data/goodbooks-10k")
RESULTS = ROOT / "benchmarks" / "results" / "online_simulation.md"
N_PHASES = 7  # A/A, then A/B and interleaving of three pairs (online_sim_run.EXPERIMENTS)


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=150, help="Simulated readers per phase (default 150).")
    parser.add_argument("--pool", type=int, default=1500,
                        help="Readers whose wants are held out (default 1500); each phase draws from its fifth.")
    parser.add_argument("--days", type=int, default=5, help="Simulated days per phase (default 5).")
    parser.add_argument("--salts", type=int, default=200, help="A/A re-splits and SRM splits (default 200).")
    parser.add_argument("--draws", type=int, default=200, help="Resamples per point of the power curves.")
    parser.add_argument("--p-want", type=float, default=0.5)
    parser.add_argument("--p-other", type=float, default=0.02)
    parser.add_argument("--activity", choices=("ratings", "uniform"), default="ratings",
                        help="Readers' activity: from their number of ratings (default), or the same for all.")
    parser.add_argument("--clicks", choices=("independent", "cascade"), default="independent",
                        help="Click model: each examined item independently (default, the issue's), or a reader "
                             "who clicks a wanted book leaves the list (a sensitivity check).")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"Results file (default {RESULTS}).")
    parser.add_argument("--compare", type=Path, default=None,
                        help="Var-dir of a run with another --activity or --clicks: its figures are shown beside.")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--data", type=Path, default=DATA, help="goodbooks-10k directory (ratings_v1.csv.gz).")
    parser.add_argument("--var-dir", type=Path, default=ROOT / "var" / "online-sim",
                        help="Keeps the prepared database between runs (default var/online-sim).")
    parser.add_argument("--fresh", action="store_true", help="Prepare the database again.")
    parser.add_argument("--analyse-only", action="store_true",
                        help="Analyse the phases the last run kept (var-dir/phases.pickle) instead of running them.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: 60 readers per phase, 3 days, no results file.")
    args = parser.parse_args(argv)
    if args.quick:
        args.readers, args.days, args.draws = 60, 3, 50
    if N_PHASES * args.readers > args.pool:
        parser.error(f"--readers {args.readers} needs --pool {N_PHASES * args.readers} or more")
    return args


def snapshot_path(args: argparse.Namespace) -> Path:
    """Return where the prepared database (loaded, experiments defined, built) of this sample is kept."""
    return args.var_dir / f"prepared-seed{args.seed}-pool{args.pool}-v3-books.sqlite3"


def sample_read(args: argparse.Namespace):
    """Return the catalogue's goodbooks-10k ratings and the held-out split of ``--pool`` readers (``--seed``), or
    None where the data is absent."""
    ratings_path = args.data / "ratings_v1.csv.gz"
    if not ratings_path.exists():
        print(f"Skipped: {ratings_path} is missing (goodbooks-10k v1 ratings).")
        return None
    rows = ratings_read(ratings_path, books_of_catalogue())
    return rows, heldout_split(rows, n_readers=args.pool, seed=args.seed)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    started = time.monotonic()
    load_before = os.getloadavg()
    sample = sample_read(args)
    if sample is None:
        return 0
    rows, split = sample
    if len(split.wants) < N_PHASES * args.readers:
        print(f"Error: --readers {args.readers} needs {N_PHASES * args.readers} simulated readers; only "
              f"{len(split.wants)} readers qualify (--pool {args.pool}). Lower --readers.", file=sys.stderr)
        return 2
    say(f"{len(rows):,} ratings of the catalogue; {len(split.wants)} simulated readers, "
        f"{sum(map(len, split.wants.values())):,} held-out wants; {len(split.train):,} ratings loaded")
    work = args.var_dir / "run"
    snapshot = snapshot_path(args)
    reuse = snapshot.exists() and not args.fresh
    if not args.analyse_only:
        shutil.rmtree(work, ignore_errors=True)
        if reuse:
            say(f"Copying the prepared database {snapshot}")
            work.mkdir(parents=True)
            shutil.copyfile(snapshot, work / "db.sqlite3")
    environment_set(work, f"sqlite:///{work / 'db.sqlite3'}")
    import django  # noqa: PLC0415 (the settings read the environment set just above)

    django.setup()
    from benchmarks import online_sim_run  # noqa: PLC0415 (needs Django set up)

    kept = args.var_dir / "phases.pickle"
    if args.analyse_only:
        phases, run = pickle.loads(kept.read_bytes())
    else:
        online_sim_run.site_ready(split, work, snapshot, say, reuse=reuse)
        pool = split.readers
        random.Random(args.seed).shuffle(pool)
        share = len(pool) // N_PHASES
        groups = [pool[i * share:i * share + args.readers] for i in range(N_PHASES)]
        model = ClickModel(p_want=args.p_want, p_other=args.p_other, seed=args.seed,
                           cascade=args.clicks == "cascade")
        activity = activities(rows, split.readers) if args.activity == "ratings" else {}
        phases = online_sim_run.phases_run(split, groups, args, model, say, activity)
        run = {"seconds": time.monotonic() - started, "load_before": load_before, "load_after": os.getloadavg(),
               "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "command": " ".join(["python benchmarks/online_simulation.py", *(argv or sys.argv[1:])])}
        kept.write_bytes(pickle.dumps((phases, run)))
    figures = online_sim_run.analyse(phases, args, say)
    figures.update(run, machine=machine(), n_ratings=len(rows), n_train=len(split.train),
                   analysed=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if args.analyse_only else "",
                   analysed_command=" ".join(["python benchmarks/online_simulation.py", *(argv or sys.argv[1:])]),
                   analysed_load=os.getloadavg()[0])
    (args.var_dir / "figures.pickle").write_bytes(pickle.dumps((figures, vars(args))))
    other = args.compare / "figures.pickle" if args.compare else None
    text = report(figures, args, pickle.loads(other.read_bytes()) if other and other.exists() else None)
    print(text)
    if not args.quick:
        args.results.write_text(text)
        say(f"Wrote {args.results}")
    return 0


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"


if __name__ == "__main__":
    sys.exit(main())

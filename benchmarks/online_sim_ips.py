"""Online simulation of offline estimation: a randomised exploration slot is logged, another configuration is served.

Run from the project root::

    .venv/bin/python benchmarks/online_sim_ips.py            # the default run, written to results/online_ips.md
    .venv/bin/python benchmarks/online_sim_ips.py --quick    # a smoke run (few readers, 2 days, no results file)

The goodbooks-10k readers and the prepared site are ``benchmarks/online_simulation.py``'s (the same
database, kept in ``--var-dir``). Items read by at most ``--new-max-readers`` readers count as new
(``NEW_ITEM_MAX_READERS``; the default 0 leaves one book of this sample new). Three phases, each with
its own readers, whose picks are refreshed (``refresh.user_refresh``) under the phase's settings:

1. *log*: each exploration slot draws its item uniformly among its ``--candidates`` best content matches
   (``EXPLORATION_EPSILON`` ``--epsilon``); the propensity is stored with the pick and on the impression.
   Before the readers' days, each target configuration's slot item for these readers is computed from the
   same picks (``pick_rows``, not stored): the offline replay.
2. *readers* and 3. *content*: the target configurations served to fresh readers, their choice alone in the
   slot (``EXPLORATION_CHOICE`` "readers": the most read of the candidates; "content": the best match).

Every figure is read from the app's rows: the IPS and SNIPS estimates of each target's slot CTR from the
log phase (``impressions.offpolicy``), against the slot CTR its own phase measured, each with its 95%
interval over readers.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.online_sim_model import ClickModel, activities  # noqa: E402
from benchmarks.online_sim_site import environment_set  # noqa: E402
from benchmarks.online_simulation import DATA, machine, sample_read, say, snapshot_path  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "online_ips.md"
TARGETS = ("readers", "content")


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=800, help="Simulated readers per phase (default 800).")
    parser.add_argument("--pool", type=int, default=3000, help="Readers whose wants are held out (default 3000).")
    parser.add_argument("--days", type=int, default=5, help="Simulated days per phase (default 5).")
    parser.add_argument("--candidates", type=int, default=4, help="EXPLORATION_CANDIDATES of every phase (default 4).")
    parser.add_argument("--epsilon", type=float, default=1.0, help="EXPLORATION_EPSILON of the log phase (default 1).")
    parser.add_argument("--new-max-readers", type=int, default=20, help="NEW_ITEM_MAX_READERS (default 20).")
    parser.add_argument("--p-want", type=float, default=0.5)
    parser.add_argument("--p-other", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--data", type=Path, default=DATA, help="goodbooks-10k directory (ratings_v1.csv.gz).")
    parser.add_argument("--var-dir", type=Path, default=ROOT / "var" / "online-sim",
                        help="Keeps the prepared database between runs (online_simulation.py's, default var/online-sim).")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Where the report goes (default results/online_ips.md).")
    parser.add_argument("--quick", action="store_true", help="Smoke run: 120 readers per phase, 2 days, no results file.")
    args = parser.parse_args(argv)
    if args.quick:
        args.readers, args.days = 120, 2
    if 3 * args.readers > args.pool:
        parser.error(f"--readers {args.readers} needs --pool {3 * args.readers} or more")
    return args


def phase_settings(args, choice: str, epsilon: float) -> dict:
    from django.conf import settings  # noqa: PLC0415 (after django.setup)

    return {**settings.RECOMMENDATIONS, "NEW_ITEM_MAX_READERS": args.new_max_readers,
            "EXPLORATION_CANDIDATES": args.candidates, "EXPLORATION_CHOICE": choice, "EXPLORATION_EPSILON": epsilon}


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    started, load_before = time.monotonic(), os.getloadavg()
    sample = sample_read(args)
    if sample is None:
        return 0
    rows, split = sample
    if len(split.wants) < 3 * args.readers:
        print(f"Error: only {len(split.wants)} readers qualify (--pool {args.pool}). Lower --readers.", file=sys.stderr)
        return 2
    work = args.var_dir / "run-ips"
    snapshot = snapshot_path(args)  # online_simulation's prepared database of the same sample
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if snapshot.exists():
        say(f"Copying the prepared database {snapshot}")
        shutil.copyfile(snapshot, work / "db.sqlite3")
    environment_set(work, f"sqlite:///{work / 'db.sqlite3'}")
    import django  # noqa: PLC0415 (the settings read the environment set just above)

    django.setup()
    from benchmarks import online_sim_ips_run as ips  # noqa: PLC0415 (needs Django set up)
    from benchmarks import online_sim_run  # noqa: PLC0415

    online_sim_run.site_ready(split, work, snapshot, say, reuse=snapshot.exists())
    pool = split.readers
    random.Random(args.seed).shuffle(pool)
    groups = [pool[i * args.readers:(i + 1) * args.readers] for i in range(3)]
    model = ClickModel(p_want=args.p_want, p_other=args.p_other, seed=args.seed)
    activity = activities(rows, split.readers)
    settings = {"log": phase_settings(args, "content", args.epsilon),
                **{t: phase_settings(args, t, 0.0) for t in TARGETS}}
    figures = ips.phases_run(split, groups, args, model, activity, settings, say)
    figures.update(seconds=time.monotonic() - started, load_before=load_before, load_after=os.getloadavg(),
                   date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), machine=machine(),
                   command=" ".join(["python benchmarks/online_sim_ips.py", *(argv if argv is not None else sys.argv[1:])]))
    text = ips.report(figures, args)
    print(text)
    if not args.quick:
        args.results.write_text(text)
        say(f"Wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Provides ``manage.py recommendations build|status|unlock|evaluate|payloads-clear``."""
from __future__ import annotations

import time

from celery import current_app
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from kombu.exceptions import OperationalError
from tqdm import tqdm

from recommendations import payloads, services
from recommendations.build.tuning import tuning_summary
from recommendations.algorithms import get_estimator
from recommendations.algorithms.evaluation import evaluate, leave_one_out_split
from recommendations.conf import app_settings
from recommendations.models import BuildRun, UserRefresh

BROKER_TIMEOUT = 2.0  # seconds to reach the broker before `status` reports it unreachable


class Command(BaseCommand):
    help = (
        "Build, inspect and evaluate recommendations.\n"
        "  build [--sync] [--wait]   queue a full build (or run it in this process with --sync)\n"
        "  status                    show the active build, running builds and the queue depth\n"
        "  unlock [--force]          release the lock of a build whose worker died\n"
        "  evaluate [--k 10]         evaluate the algorithm offline on the live data; store metrics on the active build\n"
        "  payloads-clear            forget every reader's stored picks body (after a bulk update or a deploy)"
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        build = sub.add_parser("build", help="Queue a full build, or run it with --sync.")
        build.add_argument("--sync", action="store_true", help="Run the build in this process.")
        build.add_argument("--wait", action="store_true", help="Queue it, then wait until a worker finishes it.")
        build.add_argument("--timeout", type=float, default=1800, help="Seconds to wait with --wait.")
        sub.add_parser("status", help="Show the active build, running builds and the queue depth.")
        unlock = sub.add_parser("unlock", help="Release the build lock of a build whose worker died, and fail that build.")
        unlock.add_argument("--force", action="store_true", help="Release it even if the lease has not expired.")
        evaluate = sub.add_parser("evaluate", help="Offline evaluation of the live data (leave-one-out, full ranking).")
        evaluate.add_argument("--k", default="10", help="Cut-offs, comma separated (default 10).")
        evaluate.add_argument("--seed", type=int, default=0)
        sub.add_parser("payloads-clear", help="Forget every stored picks body (recommendations.payloads).")

    def handle(self, *args, action: str, **options):
        return getattr(self, f"handle_{action.replace('-', '_')}")(**options)

    # --- build ----------------------------------------------------------------------------------
    def handle_build(self, *, sync: bool, wait: bool, timeout: float, **options):
        if sync:
            build = self._run_sync(services)
        else:
            try:
                build = services.full_build_start(triggered_by="command")
            except services.BuildAlreadyRunning as exc:
                raise CommandError(str(exc)) from None
            if build.status == build.Status.FAILED:
                raise CommandError(f"Build #{build.pk}: {build.error}")
            self.stdout.write(f"Queued build #{build.pk}.")
            if not wait:
                return
            build = self._wait(build.pk, timeout)
        if build.status != build.Status.SUCCEEDED:
            raise CommandError(f"Build #{build.pk} {build.status}: {build.error or 'see the worker log'}")
        self.stdout.write(self.style.SUCCESS(self._summary(build)))

    def _run_sync(self, services):
        bars: dict[str, tqdm] = {}

        def progress(stage: str, done: int, total: int) -> None:
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = tqdm(total=total, desc=f"{stage:>6}", unit="step", file=self.stderr._out)
            bar.n = done
            bar.refresh()
            if done >= total:
                bar.close()

        try:
            return services.full_build_run(triggered_by="command", progress=progress)
        except services.BuildError as exc:
            raise CommandError(str(exc)) from None

    def _wait(self, build_id: int, timeout: float):

        deadline = time.monotonic() + timeout
        stages = ["load", "fit", "write", "score", "switch"]
        shown = None
        with tqdm(total=len(stages), desc="build", unit="stage", file=self.stderr._out) as bar:
            while True:
                build = BuildRun.objects.get(pk=build_id)
                done = sum(1 for s in stages if s in build.timings or (s == "score" and "write_picks" in build.timings))
                done = len(stages) if build.status == BuildRun.Status.SUCCEEDED else done
                if (done, build.status) != shown:  # redraw only on change: quiet when not a terminal
                    shown = (done, build.status)
                    bar.n = done
                    bar.set_postfix_str(f"{build.status}, {', '.join(s for s in stages if s in build.timings)}")
                    bar.refresh()
                if build.status in (BuildRun.Status.SUCCEEDED, BuildRun.Status.FAILED):
                    return build
                if time.monotonic() > deadline:
                    raise CommandError(f"Build #{build_id} did not finish within {timeout:.0f} s (status {build.status}).")
                time.sleep(0.5)

    @staticmethod
    def _summary(build) -> str:
        timings = ", ".join(f"{k} {v:.2f}s" for k, v in build.timings.items())
        # Experiments add {"arms": {arm id: readers}}: not a number.
        counts = ", ".join(f"{k} {v:,}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in build.counts.items())
        tuning = tuning_summary(build.tuning)
        return (f"Build #{build.pk} is active ({build.algorithm}{', ' + tuning if tuning else ''}). {counts}. "
                f"Stages: {timings}.")

    # --- status ---------------------------------------------------------------------------------
    def handle_status(self, **options):
        active = BuildRun.objects.active().first()
        self.stdout.write(f"Active build: {self._summary(active) if active else 'none'}")
        running = BuildRun.objects.filter(status__in=[BuildRun.Status.QUEUED, BuildRun.Status.RUNNING])
        for build in running:
            self.stdout.write(f"  {build.status}: #{build.pk} since {build.started_at or build.created_at:%Y-%m-%d %H:%M:%S}")
        if not running:
            self.stdout.write("No build queued or running.")
        holder = services.build_lock_holder()
        self.stdout.write(f"Lock: {holder if holder else 'free'}")
        pending = len(services.pending_refreshes_list(limit=100000))
        self.stdout.write(f"Users waiting for a refresh: {pending} (of {UserRefresh.objects.count()} tracked)")
        self.stdout.write(f"Queue depth: {self._queue_depth()}")

    @staticmethod
    def _queue_depth() -> str:
        if current_app.conf.task_always_eager:
            return "no broker (tasks run eagerly)"
        queue = app_settings.QUEUE or current_app.conf.task_default_queue
        conn = current_app.connection_for_read()
        conn.connect_timeout = min(conn.connect_timeout or BROKER_TIMEOUT, BROKER_TIMEOUT)  # a status must not hang
        try:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT)
            try:
                _, depth, _ = conn.default_channel.queue_declare(queue=queue, passive=True)
            except conn.channel_errors as exc:
                # Not declared yet, or (on Redis) emptied: Redis deletes the list of an empty queue.
                if getattr(exc, "reply_code", None) == 404 or "NOT_FOUND" in str(exc):
                    return f"0 messages in {queue!r}"
                raise
            return f"{depth} message{'' if depth == 1 else 's'} in {queue!r}"
        except (OperationalError, *conn.connection_errors) as exc:
            return f"unknown: the broker at {conn.as_uri()} is unreachable ({exc.__class__.__name__}: {exc})"
        except Exception as exc:  # Whatever else the transport raises: say so, don't fail the command.
            return f"unknown ({exc.__class__.__name__}: {exc})"
        finally:
            conn.release()

    # --- unlock -----------------------------------------------------------------------------------
    def handle_unlock(self, *, force: bool, **options):
        try:
            released = services.build_lock_break(force=force)
        except services.BuildError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(released) if released else "The build lock is free.")

    # --- payloads-clear ---------------------------------------------------------------------------
    def handle_payloads_clear(self, **options):
        payloads.user_payloads_invalidate()
        self.stdout.write(self.style.SUCCESS("Every stored picks body is stale; each is recomputed on its next request."))

    # --- evaluate -------------------------------------------------------------------------------
    def handle_evaluate(self, *, k: str, seed: int, **options):
        try:
            ks = sorted({int(x) for x in k.split(",") if x.strip()})
        except ValueError:
            raise CommandError(f"--k must be comma-separated integers, not {k!r}.") from None
        data = services.build_load()
        if data.user_items.nnz == 0:
            raise CommandError("There are no interactions to evaluate on.")
        train, test = leave_one_out_split(data.user_items, random_state=seed, min_train=1)
        name, params = services.algorithm_settings()
        self.stdout.write(f"Evaluating {name} and toppop on {data.user_items.nnz:,} interactions "
                          f"({int((test.getnnz(axis=1) > 0).sum()):,} test users, leave-one-out, full ranking)…")
        results = {}
        for algo, algo_params in ((name, params), ("toppop", {})):
            result = evaluate(get_estimator(algo, **algo_params), train, test, ks=ks, name=algo)
            results[algo] = result.as_dict()
            shown = ", ".join(f"{key} {value:.4f}" for key, value in result.metrics.items() if isinstance(value, float))
            self.stdout.write(f"  {algo}: {shown} (fit {result.fit_seconds:.2f}s)")
        build = BuildRun.objects.active().first()
        if build is not None:
            build.metrics = {"evaluated_at": timezone.now().isoformat(), "protocol": "leave-one-out, full ranking",
                             "results": results}
            build.save(update_fields=["metrics"])
            self.stdout.write(self.style.SUCCESS(f"Stored the metrics on build #{build.pk}."))

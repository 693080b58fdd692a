"""Provides the full-build lease: one full build at a time, and a lease from a dead worker expires.

The lease is a ``BuildLock`` row named ``full-build`` whose owner names the build and the
delivery (host, process, thread) that holds it. A build pushes its expiry forward between
stages; a lease past ``LOCK_TIMEOUT`` belongs to a dead worker and is taken over.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..conf import app_settings
from ..db.sqlite_locked import retry_when_locked
from ..models import BuildLock, BuildRun
from .errors import BuildError
from .state import build_rows_delete

logger = logging.getLogger(__name__)

FULL_BUILD_LOCK = "full-build"


def lease_owner(build_id: int) -> str:
    """Return the owner name of one delivery: two copies of the same task (processes or threads) never share it."""
    return f"build:{build_id}@{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def lease_build_id(owner: str) -> int | None:
    """Return the build id named by a lease owner, or None."""
    holder = owner.split("@")[0].removeprefix("build:")
    return int(holder) if holder.isdigit() else None


@retry_when_locked
def build_lock_acquire(*, build_id: int) -> bool:
    """Take the full-build lease for ``build_id``; return False while another live lease exists.

    A live lease is never shared, not even with another delivery of the same build: a task
    delivered twice at once runs once. A lease past its expiry belongs to a dead worker; it is
    taken over, and the build that held it (if another one) is marked failed.
    """
    now = timezone.now()
    expires = now + timedelta(seconds=app_settings.LOCK_TIMEOUT)
    owner = f"{lease_owner(build_id)}:{uuid.uuid4().hex[:8]}"  # unique even for a retry in the same thread
    with transaction.atomic():
        lock = BuildLock.objects.select_for_update().filter(name=FULL_BUILD_LOCK).first()
        if lock is None:
            try:
                with transaction.atomic():
                    BuildLock.objects.create(name=FULL_BUILD_LOCK, owner=owner, acquired_at=now, expires_at=expires)
                return True
            except IntegrityError:
                return False
        if lock.expires_at > now:
            return False
        logger.warning("Taking over a stale build lock held by %s since %s", lock.owner, lock.acquired_at)
        stale_build = lease_build_id(lock.owner)
        if stale_build is not None and stale_build != build_id:
            BuildRun.objects.filter(pk=stale_build, status=BuildRun.Status.RUNNING).update(
                status=BuildRun.Status.FAILED, finished_at=now,
                error="Its worker stopped before it finished (the build lock expired).",
            )
        lock.owner, lock.acquired_at, lock.expires_at = owner, now, expires
        lock.save()
        return True


@retry_when_locked
def build_lock_extend(*, build_id: int) -> None:
    """Push the lease's expiry forward (a heartbeat between stages)."""
    BuildLock.objects.filter(name=FULL_BUILD_LOCK, owner__startswith=f"build:{build_id}@").update(
        expires_at=timezone.now() + timedelta(seconds=app_settings.LOCK_TIMEOUT)
    )


@retry_when_locked
def build_lock_release(*, build_id: int) -> None:
    """Release the lease if build ``build_id`` holds it."""
    BuildLock.objects.filter(name=FULL_BUILD_LOCK, owner__startswith=f"build:{build_id}@").delete()


def build_lock_break(*, force: bool = False) -> str:
    """Release the full-build lease (its worker died) and fail the build that held it.

    Without ``force`` only an expired lease is released; a live one may belong to a build
    that is still working. Return what was done, or "" when the lock was free.
    """
    with transaction.atomic():
        lock = BuildLock.objects.select_for_update().filter(name=FULL_BUILD_LOCK).first()
        if lock is None:
            return ""
        if lock.expires_at > timezone.now() and not force:
            raise BuildError(
                f"The lock is held by {lock.owner} until {lock.expires_at:%H:%M:%S} UTC and may still be in use; "
                "use --force if its worker is dead."
            )
        holder = lock.owner.split("@")[0].removeprefix("build:")
        lock.delete()
    if holder.isdigit():
        BuildRun.objects.filter(pk=int(holder), status__in=[BuildRun.Status.RUNNING, BuildRun.Status.QUEUED]).update(
            status=BuildRun.Status.FAILED, finished_at=timezone.now(), error="Its lock was released by an operator."
        )
        build_rows_delete(int(holder))
    return f"Released the lock of build #{holder}; that build is marked failed."


def build_lock_holder() -> BuildLock | None:
    """Return the live lease, if a build holds one."""
    return BuildLock.objects.filter(name=FULL_BUILD_LOCK, expires_at__gt=timezone.now()).first()

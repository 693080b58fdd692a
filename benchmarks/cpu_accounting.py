"""Provides CPU seconds per part of a load run (site, build, their PostgreSQL backends, Redis, the rest), read from /proc.

Linux only; elsewhere every figure is 0. A PostgreSQL backend is charged to the process that
holds its client socket (matched by port through ``ss``), so the build's queries count as the
build's and the site's as the site's. A backend that exits during the run takes its seconds
with it, except into the postmaster's reaped-children total, which is reported on its own.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _port_owners() -> dict[int, int]:
    """Return {local port: pid} of the TCP connections to 127.0.0.1:5432 (the clients of PostgreSQL)."""
    try:
        out = subprocess.run(["ss", "-tnpH", "state", "established", "dst", "127.0.0.1:5432"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    owners = {}
    for line in out.splitlines():
        match = re.search(r"127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:5432.*pid=(\d+)", line)
        if match:
            owners[int(match.group(1))] = int(match.group(2))
    return owners


def _backend_ports(database: str) -> dict[str, int]:
    """Return {backend pid: client port} of ``database``'s PostgreSQL backends, from their process titles."""
    ports = {}
    for cmd_path in Path("/proc").glob("[0-9]*/cmdline"):
        pid = cmd_path.parent.name
        title = _cmdline(pid)
        match = re.match(rf"postgres: (?:\S+: )?\S+ {re.escape(database)} 127\.0\.0\.1\((\d+)\)", title)
        if match:
            ports[pid] = int(match.group(1))
    return ports


def snapshot(groups: dict[str, int], *, database: str | None = None) -> dict[str, float]:
    """Return CPU seconds so far per part: each of ``groups`` ({name: process group}), ``<name>_postgres`` for the
    backends serving it, ``postgres_reaped`` (exited backends, all databases), ``redis`` and ``machine`` (all)."""
    by_group = {pgrp: name for name, pgrp in groups.items()}
    pgrp_of: dict[int, int] = {}
    seconds = {name: 0.0 for name in groups} | {"postgres_reaped": 0.0, "redis": 0.0}
    backends = _backend_ports(database) if database else {}
    owners = _port_owners() if backends else {}
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        pid = stat_path.parent.name
        fields = _stat(pid)
        if fields is None:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
        pgrp_of[int(pid)] = int(fields[2])
        if int(fields[2]) in by_group:
            seconds[by_group[int(fields[2])]] += cpu
        elif pid in backends:
            seconds.setdefault(f"_backend:{pid}", cpu)
        elif fields[1] == "1" and "postgres" in _cmdline(pid).split(" ")[0]:  # the postmaster
            seconds["postgres_reaped"] += (int(fields[13]) + int(fields[14])) / TICK  # cutime, cstime
        elif _cmdline(pid).startswith("redis-server"):
            seconds["redis"] += cpu
    for key in [k for k in seconds if k.startswith("_backend:")]:
        pid = key.split(":", 1)[1]
        name = by_group.get(pgrp_of.get(owners.get(backends[pid], -1)))
        seconds[f"pg:{pid}:{f'{name}_postgres' if name else 'postgres_other'}"] = seconds.pop(key)
    seconds["machine"] = _machine_seconds()
    return seconds


def _machine_seconds() -> float:
    """Return the CPU seconds all processes used (busy time of /proc/stat's first line)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / TICK


def cores_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Return the cores each part used between two snapshots, plus ``other`` (the machine less the parts named)."""
    used = {name: round((after[name] - before.get(name, 0.0)) / seconds, 2) for name in after
            if not name.startswith("pg:")}
    # Per backend, charged to its owner at the end; one that exited is in postgres_reaped instead.
    started = {key.split(":")[1]: value for key, value in before.items() if key.startswith("pg:")}
    for key, value in after.items():
        if key.startswith("pg:"):
            _, pid, part = key.split(":")
            used[part] = round(used.get(part, 0.0) + (value - started.get(pid, 0.0)) / seconds, 2)
    named = sum(v for k, v in used.items() if k != "machine")
    used["other"] = round(used["machine"] - named, 2)
    return used

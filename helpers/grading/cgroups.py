"""A v1 cgroup (``pids`` + ``memory`` controllers) for one grading kernel.

Created and filled by the grader (root), outside the sandbox: the kernel sees no
cgroup file (:mod:`helpers.grading.sandbox` binds no ``/sys/fs/cgroup``).
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path


def _own_cgroup(controller):
    """This process's cgroup path for a v1 controller ('' if not mounted)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            if controller in ctrls.split(","):
                return path
    except OSError:
        pass
    return None


class Cgroup:
    """A v1 ``pids`` + ``memory`` cgroup for one kernel, nested under our own.

    ``Cgroup.create(limits)`` returns None where cgroups are not writable (then
    ``prlimit`` limits are used instead: see :func:`kernel_command`).
    """

    def __init__(self, dirs):
        self.dirs = dirs            # {"pids": Path, "memory": Path}

    @classmethod
    def create(cls, limits, name=None):
        name = name or f"course-grading-{uuid.uuid4().hex[:12]}"
        dirs = {}
        try:
            for ctrl in ("pids", "memory"):
                own = _own_cgroup(ctrl)
                root = Path("/sys/fs/cgroup") / ctrl
                if own is None or not (root / "cgroup.procs").exists():
                    raise OSError(f"no v1 {ctrl} controller")
                d = root / own.lstrip("/") / name
                d.mkdir()
                dirs[ctrl] = d
            (dirs["pids"] / "pids.max").write_text(str(limits.max_processes))
            mem = dirs["memory"]
            (mem / "memory.limit_in_bytes").write_text(str(limits.memory_mb * 2**20))
            sw = mem / "memory.memsw.limit_in_bytes"
            if sw.exists():
                try:
                    sw.write_text(str(limits.memory_mb * 2**20))
                except OSError:
                    pass
        except OSError:
            cls(dirs).remove()
            return None
        return cls(dirs)

    @staticmethod
    def sweep(max_age=3600):
        """Remove empty grading cgroups left by a grader that was killed (older than max_age s)."""
        removed = 0
        for ctrl in ("pids", "memory"):
            own = _own_cgroup(ctrl)
            if own is None:
                continue
            for d in (Path("/sys/fs/cgroup") / ctrl / own.lstrip("/")).glob("course-grading-*"):
                try:
                    if time.time() - d.stat().st_mtime > max_age and not (d / "cgroup.procs").read_text().strip():
                        d.rmdir()
                        removed += 1
                except OSError:
                    pass
        return removed

    def procs_files(self):
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def _read(self, ctrl, name):
        try:
            return (self.dirs[ctrl] / name).read_text()
        except (OSError, KeyError):
            return ""

    def oom_killed(self):
        """True if the memory limit was hit (a kernel OOM kill or failed allocations)."""
        text = self._read("memory", "memory.oom_control")
        for line in text.splitlines():
            if line.startswith("oom_kill ") and int(line.split()[1]) > 0:
                return True
        return int(self._read("memory", "memory.failcnt") or 0) > 0

    def pids_hit(self):
        """True if a fork failed because of pids.max."""
        text = self._read("pids", "pids.events")
        return any(l.startswith("max ") and int(l.split()[1]) > 0 for l in text.splitlines())

    def pids(self):
        out = set()
        for d in self.dirs.values():
            try:
                out |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return out

    def kill(self):
        """SIGKILL every process in the cgroup, until it is empty (at most ~5 s)."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    def remove(self):
        self.kill()
        for d in self.dirs.values():
            for _ in range(20):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)

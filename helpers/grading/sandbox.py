"""The grading sandbox: each student kernel runs in bubblewrap, inside its own cgroup.

What the kernel (the student's code) gets:

* its own PID and network namespaces (``bwrap --unshare-pid --unshare-net``): no
  network at all, and it sees no other process; all its processes die with it;
* a read-only view of the system (``/usr``, ``/etc``), of this Python and its
  virtual environment, and of the course's ``helpers/`` and ``data/``; nothing
  else of the disk: not ``solutions/``, not the gradebook, not other submissions;
* a private writable working folder (a scratch copy of the assignment's data
  files, never read back by the grader) and a private ``/tmp`` and ``/dev/shm``;
* limits, per assignment (:class:`Limits`): memory and number of processes through
  a cgroup (v1 ``memory`` and ``pids`` controllers), CPU seconds and file size
  through ``prlimit``; output size and wall time are enforced by the grader
  (:mod:`helpers.grading.execute`).

The kernel talks to the grader over Unix sockets (``transport = ipc``) in a
private runtime folder, the only other folder it can write.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent

#: Where the kernel's working folder appears inside the sandbox.
SANDBOX_HOME = "/home/student"
SANDBOX_WORK = SANDBOX_HOME + "/work"


@dataclass
class Limits:
    """Resource limits for one submission. Keys of a notebook's ``course`` metadata."""
    cell_timeout: int = 60          # seconds per cell
    wall_timeout: int = 900         # seconds for the whole notebook
    memory_mb: int = 4096           # resident memory of all its processes
    cpu_seconds: int = 3600         # CPU seconds per process (RLIMIT_CPU)
    max_processes: int = 512        # processes + threads (cgroup pids.max)
    output_mb: int = 50             # printed/displayed output per notebook; largest file written

    @classmethod
    def from_settings(cls, settings=None, **overrides):
        """Limits from a ``course`` metadata dict; unknown keys are ignored."""
        values = {f.name: (settings or {}).get(f.name) for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**{k: int(v) for k, v in values.items() if v is not None})

    def as_dict(self):
        return asdict(self)


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here."""


_PROBLEM = None


def sandbox_problem():
    """None if bubblewrap works here, else a sentence saying why not (cached)."""
    global _PROBLEM
    if _PROBLEM is not None:
        return _PROBLEM or None
    bwrap = shutil.which("bwrap")
    if not bwrap:
        hint = ("run `apt-get install bubblewrap` (python3 course.py setup does it as root)"
                if sys.platform.startswith("linux") else "the sandbox needs Linux")
        _PROBLEM = f"bubblewrap (bwrap) is not installed: {hint}"
        return _PROBLEM
    cmd = [bwrap, "--unshare-net", "--unshare-pid", "--die-with-parent",
           *_PRIVATE_MOUNTS, *_system_binds(), sys.executable, "-c", "print('ok')"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _PROBLEM = f"bubblewrap could not start: {exc}"
        return _PROBLEM
    if out.returncode != 0 or out.stdout.strip() != "ok":
        err = (out.stderr or out.stdout).strip().splitlines()
        _PROBLEM = ("bubblewrap cannot create a sandbox here "
                    f"({err[-1] if err else 'exit status %d' % out.returncode}); "
                    "it needs root or unprivileged user namespaces")
        return _PROBLEM
    _PROBLEM = ""
    return None


#: Private, empty mounts. They come first, so that binds listed after them (the
#: venv, the course's helpers/ and data/) stay visible even when those live under
#: /tmp or /home, as a clone in /tmp does.
_PRIVATE_MOUNTS = ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm",
                   "--tmpfs", "/tmp", "--tmpfs", "/home", "--tmpfs", "/run"]


def _system_binds():
    """Read-only binds of the system and of this Python (venv and base install)."""
    args = []
    for top in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt"):
        p = Path(top)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), top]
        elif p.is_dir():
            args += ["--ro-bind", top, top]
    seen = set()
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                   str(Path(sys.executable).parent), str(Path(sys.executable).resolve().parent.parent)):
        for path in {Path(prefix), Path(prefix).resolve()}:
            s = str(path)
            if s in seen or any(s == t or s.startswith(t + "/") for t in ("/usr", "/etc", "/opt")):
                continue
            if path.exists() and not any(s.startswith(q + "/") for q in seen):
                seen.add(s)
                args += ["--ro-bind", s, s]
    return args


# --------------------------------------------------------------------------- cgroups


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


# --------------------------------------------------------------------------- the command


def kernel_command(kernel_cmd, *, workdir, runtime_dir, limits, cgroup, log_path,
                   sandbox=True, repo=REPO):
    """Wrap a kernel's argv: join the cgroup, set rlimits, enter bubblewrap.

    kernel_cmd: the kernel's own argv (python -m ipykernel_launcher -f FILE ...).
    workdir: host folder bound read-write as the kernel's working folder.
    runtime_dir: host folder holding the connection file and IPC sockets (bound rw).
    Returns the argv to launch (``/bin/sh -c ...``).
    """
    rl = [shutil.which("prlimit") or "prlimit", f"--cpu={limits.cpu_seconds}",
          f"--fsize={limits.output_mb * 2**20}", "--core=0", "--nofile=4096"]
    if cgroup is None:   # no cgroup: the best rlimits can do
        rl += [f"--nproc={limits.max_processes}", f"--data={limits.memory_mb * 2**20}"]
    rl.append("--")
    if sandbox:
        inner = [shutil.which("bwrap"), "--unshare-net", "--unshare-pid", "--unshare-ipc",
                 "--unshare-uts", "--hostname", "sandbox", "--die-with-parent",
                 "--unsetenv", "JPY_PARENT_PID",  # its parent is the namespace init
                 *_PRIVATE_MOUNTS, *_system_binds(),
                 "--ro-bind", "/sys", "/sys"]
        for sub in ("helpers", "data"):
            p = Path(repo) / sub
            if p.is_dir():
                inner += ["--ro-bind", str(p), str(p)]
        inner += ["--bind", str(workdir), SANDBOX_WORK,
                  "--bind", str(runtime_dir), str(runtime_dir),
                  "--chdir", SANDBOX_WORK, "--"]
    else:
        inner = []
    joins = "".join(f'echo $$ > {shlex.quote(f)} && ' for f in (cgroup.procs_files() if cgroup else []))
    script = f'{joins}exec "$@" >> {shlex.quote(str(log_path))} 2>&1'
    return ["/bin/sh", "-c", script, "sh", *rl, *inner, *kernel_cmd]


def kernel_env(threads, repo=REPO, sandbox=True):
    """Environment of a grading kernel: quiet TF, grading mode, thread counts."""
    keep = ("LANG", "LC_ALL", "TZ")
    env = {k: v for k, v in os.environ.items() if k in keep}
    threads = str(max(1, int(threads)))
    env.update({
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "PYTHONPATH": str(repo),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": SANDBOX_HOME if sandbox else os.environ.get("HOME", "/tmp"),
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0", "KERAS_BACKEND": "tensorflow",
        "COURSE_GRADING": "1",
        "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
        "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads,
        "JUPYTER_PLATFORM_DIRS": "1",
    })
    if not sandbox:
        env["PATH"] = env["PATH"] + os.pathsep + os.environ.get("PATH", "")
    return env

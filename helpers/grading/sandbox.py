"""The grading sandbox: each student kernel runs in bubblewrap, inside its own cgroup.

What the kernel (the student's code) gets:

* no privileges: no capabilities (``bwrap --cap-drop ALL``; empty bounding set,
  ``no_new_privs``, so set-uid programs such as ``mount`` gain nothing) and never
  uid 0: a grader running as root starts each kernel as a fresh uid of its own
  (:func:`kernel_uid`, owned by no account), a grader running as a user keeps its uid
  inside a user namespace from which no further namespace can be made;
* its own PID, network, IPC, UTS and cgroup namespaces (``bwrap --unshare-pid
  --unshare-net ...``): no network at all, and it sees no other process; all its
  processes die with it;
* a read-only view of the system (``/usr``, ``/etc``), of this Python and its
  virtual environment, and of the course's ``helpers/`` and ``data/``; nothing
  else of the disk: not ``solutions/``, not the gradebook, not other submissions,
  not ``/sys`` (so no cgroup file, its own or another kernel's) beyond the CPU list;
* a private writable working folder (a scratch copy of the assignment's data
  files, never read back by the grader) and a private ``/tmp`` and ``/dev/shm``;
* limits, per assignment (:class:`Limits`): memory and number of processes through
  a cgroup (v1 ``memory`` and ``pids`` controllers), CPU seconds and file size
  through ``prlimit``; output size and wall time are enforced by the grader
  (:mod:`helpers.grading.execute`).

The kernel talks to the grader over Unix sockets (``transport = ipc``) in a
private runtime folder, the only other folder it can write; both folders are handed
to the kernel's uid at launch (the grader, root, still reads and connects).
"""
from __future__ import annotations

import os
import secrets
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .cgroups import Cgroup  # noqa: F401  (execute and batch use sandbox.Cgroup)

REPO = Path(__file__).resolve().parent.parent.parent
#: Packages of the grading machinery (the judge's trusted measures among them): a student's
#: kernel sees their folders empty, so nothing that runs there can import them
#: (:mod:`helpers.grading.jobs` leaves their imports out of what it re-runs there).
GRADER_ONLY = ("helpers.grading",)

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
    """None if the sandbox works here, else a sentence saying why not (cached).

    It starts a real sandbox (:func:`kernel_command`, dropping to an unprivileged uid)
    that prints ``ok``.
    """
    global _PROBLEM
    if _PROBLEM is not None:
        return _PROBLEM or None
    if not shutil.which("bwrap"):
        hint = ("run `apt-get install bubblewrap` (python3 course.py setup does it as root)"
                if sys.platform.startswith("linux") else "the sandbox needs Linux")
        _PROBLEM = f"bubblewrap (bwrap) is not installed: {hint}"
        return _PROBLEM
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        _PROBLEM = "setpriv (util-linux) is not installed: the kernel could not leave root"
        return _PROBLEM
    tmp = Path(tempfile.mkdtemp(prefix="course-sandbox-probe-"))
    try:
        for d in ("work", "run"):
            (tmp / d).mkdir()
        cmd = kernel_command([sys.executable, "-c", "print('ok')"], workdir=tmp / "work",
                             runtime_dir=tmp / "run", limits=Limits(), cgroup=None, log_path=tmp / "log")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=kernel_env(1), cwd=tmp)
        log = (tmp / "log").read_text(errors="replace") if (tmp / "log").exists() else ""
    except (OSError, subprocess.TimeoutExpired) as exc:
        _PROBLEM = f"bubblewrap could not start: {exc}"
        return _PROBLEM
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if out.returncode != 0 or log.strip() != "ok":
        err = (log or out.stderr or out.stdout).strip().splitlines()
        _PROBLEM = ("bubblewrap cannot create a sandbox here "
                    f"({err[-1] if err else 'exit status %d' % out.returncode}); "
                    "it needs root or unprivileged user namespaces")
        return _PROBLEM
    _PROBLEM = ""
    return None


#: Private, empty mounts. They come first, so that binds listed after them (the
#: venv, the course's helpers/ and data/) stay visible even when those live under
#: /tmp or /home, as a clone in /tmp does.
#: /tmp, /dev/shm and the home folder are writable by the kernel's uid (sticky, 1777).
_PRIVATE_MOUNTS = ["--proc", "/proc", "--dev", "/dev", "--perms", "01777", "--tmpfs", "/dev/shm",
                   "--perms", "01777", "--tmpfs", "/tmp", "--tmpfs", "/home", "--tmpfs", "/run",
                   "--perms", "01777", "--dir", SANDBOX_HOME]
_PRIVATE_DIRS = {"/proc", "/dev", "/dev/shm", "/tmp", "/home", "/run", SANDBOX_HOME}

#: Of /sys, only the list of CPUs (what glibc, OpenBLAS and TensorFlow read to count
#: cores): no cgroup file, no device, nothing writable.
_SYS_BINDS = ("/sys/devices/system/cpu",)

#: Where a root grader's kernels get their uids: a fresh one per kernel, so that
#: kernels share no uid (no signals, no common RLIMIT_NPROC count) and own no file
#: of the host. Far above the uids of accounts and of the usual container ranges.
KERNEL_UIDS = range(1_800_000_000, 1_800_000_000 + 2**24)
NOBODY = 65534


def _uid_mapped(uid):
    """True if this process's user namespace maps ``uid`` (it can switch to it)."""
    try:
        for line in Path("/proc/self/uid_map").read_text().splitlines():
            inside, _, count = (int(x) for x in line.split())
            if inside <= uid < inside + count:
                return True
    except (OSError, ValueError):
        return False
    return False


def kernel_uid():
    """The uid (= gid) a new kernel runs as, or None to keep ours (we are not root).

    As root: a random uid of :data:`KERNEL_UIDS`, or ``nobody`` (65534) where this
    process's user namespace does not map that block (a rootless container).
    """
    if os.geteuid() != 0:
        return None
    uid = KERNEL_UIDS[secrets.randbelow(len(KERNEL_UIDS))]
    return uid if _uid_mapped(uid) else NOBODY


#: (AUDIT_ARCH, unshare, clone, clone3) system call numbers, per machine.
_SYSCALLS = {"x86_64": (0xC000003E, 272, 56, 435), "aarch64": (0xC00000B7, 97, 220, 435)}


def userns_filter(machine=None):
    """A seccomp program (``bwrap --seccomp``) refusing new user namespaces, or None.

    ``unshare``/``clone`` with ``CLONE_NEWUSER`` and any call of another ABI (i386,
    x32) fail with EPERM; ``clone3`` (flags out of reach) with ENOSYS, so that glibc
    falls back to ``clone``. A kernel started as root could otherwise make a user
    namespace, the way into most kernel exploits (as a user, ``--disable-userns``
    does the same where bwrap is 0.8 or later).
    """
    arch = _SYSCALLS.get(machine or os.uname().machine)
    if arch is None:
        return None
    audit, unshare, clone, clone3 = arch
    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    allow, deny, nosys = 0x7FFF0000, 0x50000 | 1, 0x50000 | 38    # EPERM, ENOSYS
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, audit), (ret, 0, 0, deny),      # (code, jt, jf, k)
            (ld, 0, 0, 0), (jset, 7, 0, 0x40000000),
            (jeq, 3, 0, unshare), (jeq, 2, 0, clone), (jeq, 5, 0, clone3), (ret, 0, 0, allow),
            (ld, 0, 0, 16), (jset, 1, 0, 0x10000000), (ret, 0, 0, allow),  # flags & CLONE_NEWUSER
            (ret, 0, 0, deny), (ret, 0, 0, nosys)]
    return b"".join(struct.pack("<HBBI", *ins) for ins in prog)


_FILTER_FD = {}


def _filter_path():
    """A path the launch script can open to read :func:`userns_filter` (no file on disk:
    a memfd this process keeps open), or None."""
    pid = os.getpid()
    if pid not in _FILTER_FD:
        prog = userns_filter()
        fd = None
        if prog and hasattr(os, "memfd_create"):
            fd = os.memfd_create("course-userns-filter", 0)
            os.write(fd, prog)
        _FILTER_FD.clear()          # a forked child makes its own
        _FILTER_FD[pid] = fd
    fd = _FILTER_FD[pid]
    return None if fd is None else f"/proc/{pid}/fd/{fd}"


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


def under_system_binds(path, binds):
    """True if ``path`` lies in a folder that ``binds`` (bwrap arguments) show read-only, as
    ``/opt`` is shown: then everything in it (``solutions/``, the grading folder with its
    results and the judge's key) would be readable by a kernel that has the right."""
    path = str(Path(path).resolve())
    seen = [binds[i + 2] for i in range(len(binds) - 2) if binds[i] == "--ro-bind"]
    return any(path == s or path.startswith(s.rstrip("/") + "/") for s in seen)


def _open_parents(args):
    """``args`` with every folder above a bind's destination created 0755 first.

    bwrap copies the modes of the host's folders (``/root`` is 0700), which a kernel
    that is not root could not cross to reach its Python or its runtime folder.
    """
    out, made, bound = [], set(_PRIVATE_DIRS), []
    i = 0
    while i < len(args):
        op = args[i]
        if op in ("--ro-bind", "--bind", "--symlink") and i + 2 < len(args):
            dest = args[i + 2]
            if op != "--symlink":
                for parent in reversed(Path(dest).parents[:-1]):
                    d = str(parent)
                    if d not in made and not any(d == b or d.startswith(b + "/") for b in bound):
                        out += ["--perms", "0755", "--dir", d]
                        made.add(d)
            bound.append(dest)
            out += args[i:i + 3]
            i += 3
        else:
            out.append(op)
            i += 1
    return out


# --------------------------------------------------------------------------- the command


def kernel_command(kernel_cmd, *, workdir, runtime_dir, limits, cgroup, log_path,
                   sandbox=True, repo=REPO):
    """Wrap a kernel's argv: join the cgroup, set rlimits, enter bubblewrap, drop root.

    kernel_cmd: the kernel's own argv (python -m ipykernel_launcher -f FILE ...).
    workdir: host folder bound read-write as the kernel's working folder.
    runtime_dir: host folder holding the connection file and IPC sockets (bound rw).
    Returns the argv to launch (``/bin/sh -c ...``). As root, bwrap keeps only the
    capabilities to change uid, and ``setpriv`` inside the sandbox switches to
    :func:`kernel_uid` and drops them (and the bounding set) before the kernel starts;
    ``workdir`` and ``runtime_dir`` (with the connection file) are handed to that uid.
    As a user, bwrap makes a user namespace (``--unshare-user --disable-userns``).
    Both get :func:`userns_filter` where the machine is known.
    """
    rl = [shutil.which("prlimit") or "prlimit", f"--cpu={limits.cpu_seconds}",
          f"--fsize={limits.output_mb * 2**20}", "--core=0", "--nofile=4096"]
    if cgroup is None:   # no cgroup: the best rlimits can do
        rl += [f"--nproc={limits.max_processes}", f"--data={limits.memory_mb * 2**20}"]
    rl.append("--")
    uid = kernel_uid() if sandbox else None
    prelude = ""                                   # run by the shell as the grader
    if sandbox:
        inner = [shutil.which("bwrap"), "--unshare-net", "--unshare-pid", "--unshare-ipc",
                 "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox",
                 "--die-with-parent", "--new-session",
                 "--unsetenv", "JPY_PARENT_PID",  # its parent is the namespace init
                 "--cap-drop", "ALL"]
        if uid is None:
            inner[1:1] = ["--unshare-user", *(["--disable-userns"] if _bwrap_has("--disable-userns") else [])]
        else:
            inner += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
            prelude = f"chown -R {uid}:{uid} -- {shlex.quote(str(workdir))} {shlex.quote(str(runtime_dir))} && "
        if _filter_path():
            prelude += f"exec 9< {shlex.quote(_filter_path())} && "
            inner += ["--seccomp", "9"]
        binds = [*_system_binds()]
        binds += [a for p in _SYS_BINDS if Path(p).is_dir() for a in ("--ro-bind", p, p)]
        if under_system_binds(repo, binds):     # a checkout in /opt, say: hide all of it first
            binds += ["--tmpfs", str(Path(repo).resolve())]          # (solutions/, grading/)
        for sub in ("helpers", "data"):
            p = Path(repo) / sub
            if p.is_dir():
                binds += ["--ro-bind", str(p), str(p)]
        binds += ["--bind", str(workdir), SANDBOX_WORK, "--bind", str(runtime_dir), str(runtime_dir)]
        # the grading machinery (the judge's trusted measures among it) is not the student's
        hidden = [a for p in [Path(repo, *package.split(".")) for package in GRADER_ONLY] if p.is_dir()
                  for a in ("--tmpfs", str(p))]
        inner += [*_PRIVATE_MOUNTS, *_open_parents(binds), *hidden, "--chdir", SANDBOX_WORK, "--"]
        if uid is not None:
            inner += [shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={uid}",
                      "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                      "--no-new-privs", "--"]
    else:
        inner = []
    joins = "".join(f'echo $$ > {shlex.quote(f)} && ' for f in (cgroup.procs_files() if cgroup else []))
    script = f'{joins}{prelude}exec "$@" >> {shlex.quote(str(log_path))} 2>&1'
    return ["/bin/sh", "-c", script, "sh", *rl, *inner, *kernel_cmd]


_HELP = []


def _bwrap_has(option):
    """True if this bwrap knows ``option`` (``--disable-userns`` came in 0.8)."""
    if not _HELP:
        try:
            out = subprocess.run([shutil.which("bwrap") or "bwrap", "--help"], capture_output=True, text=True)
            _HELP.append(out.stdout + out.stderr)
        except OSError:
            _HELP.append("")
    return option in _HELP[0]


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
        "COURSE_GRADING": "1", "USER": "student", "LOGNAME": "student",
        "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
        "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads,
        "JUPYTER_PLATFORM_DIRS": "1",
    })
    if not sandbox:
        env["PATH"] = env["PATH"] + os.pathsep + os.environ.get("PATH", "")
    return env

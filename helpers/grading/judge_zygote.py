"""Judge kernels forked from a process that has already imported TensorFlow.

Every graded submission of a TensorFlow assignment starts a trusted judge kernel
(:class:`helpers.grading.judge.TrustedKernel`), whose first job used to be importing
TensorFlow and Keras: about 5 CPU-seconds per submission on a 2-core CPU, blank releases
included. A **zygote**, one per grading process and kernel environment, imports them once
(:data:`PRELOAD`) and then forks a new IPython kernel for every judge. Each judge is still a
process of its own, made from the same clean imports, never one that graded somebody else:

    zygote = Zygote.get(env)                     # started once per process and environment
    kernel = zygote.start(env, cwd, connection_file)   # a ForkedKernel, ~0.3 CPU-s
    kernel.interrupt_kernel(); kernel.restart_kernel(); kernel.shutdown_kernel()

The zygote runs no student code and no test: it imports :data:`PRELOAD` and forks. It reads
one JSON line per kernel on its stdin (``env``, ``cwd``, ``connection_file``) and answers
``{"pid", "start"}`` once the child has its own session. It forks only while it is single-
threaded (its BLAS runs one thread; each kernel then sets its own count), else it refuses and
the judge starts the usual way. The children are reaped by the system (SIGCHLD ignored) and
end themselves when the zygote does (ipykernel's parent poller). The zygote exits, killing
the kernels it forked that still run, when its stdin closes, that is, with the grading
process that started it, however that one ends. Set
``COURSE_JUDGE_FORK=0`` to start every judge as a new Python process instead; if the zygote
cannot start or answer, the judge does that too.
"""
from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import leftovers

#: What the zygote imports before it forks (the judge's own imports run in each kernel).
PRELOAD = ("from helpers import env", "import numpy", "import tensorflow", "import keras",
           "import matplotlib", "import ipykernel.kernelapp", "import helpers.grading.bridge")
#: Variables that differ from one judge to the next: never part of the zygote's environment.
PER_KERNEL = ("HOME", "MPLCONFIGDIR", "TMPDIR", "COURSE_STUDENT_KERNEL", "COURSE_CALL_TIMEOUT",
              "COURSE_JUDGE_DRAWS")       # bridge.CONNECTION_ENV, bridge.TIMEOUT_ENV, draws.ENV
ENABLE_ENV = "COURSE_JUDGE_FORK"


def enabled():
    return os.environ.get(ENABLE_ENV, "1") != "0" and hasattr(os, "fork")


class ZygoteError(RuntimeError):
    """The zygote could not start or fork a kernel (the judge then starts one the usual way)."""


class Zygote:
    """Parent side: the zygote process for one kernel environment, started on first use."""

    _live: dict = {}
    _lock = threading.Lock()
    command = (sys.executable, "-m", "helpers.grading.judge_zygote")

    @classmethod
    def get(cls, env):
        key = json.dumps(sorted((k, v) for k, v in env.items() if k not in PER_KERNEL))
        with cls._lock:
            z = cls._live.get(key)
            if z is not None and z.broken:       # it failed once: no new one per submission
                raise ZygoteError("the judge's zygote failed earlier in this process")
            if z is None or z.proc.poll() is not None:
                try:
                    z = cls._live[key] = cls(env)
                except OSError as exc:
                    raise ZygoteError(f"the judge's zygote could not start: {exc}") from exc
            return z

    def __init__(self, env):
        self.dir = tempfile.mkdtemp(prefix=leftovers.prefix("zygote"))
        # keras and matplotlib read HOME and MPLCONFIGDIR on import: the zygote's own folder;
        # one BLAS thread, so that the zygote is single-threaded when it forks
        zenv = {k: v for k, v in env.items() if k not in PER_KERNEL}
        zenv.update(HOME=self.dir, MPLCONFIGDIR=self.dir, OMP_NUM_THREADS="1",
                    OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.ready = self.broken = False
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(list(self.command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=zenv, cwd=self.dir,
                                     start_new_session=True)
        atexit.register(self.close)

    def _line(self, deadline):
        out = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while not out.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise ZygoteError("the judge's zygote did not answer in time")
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise ZygoteError("the judge's zygote exited")
                out += chunk
        return json.loads(out)

    def start(self, env, cwd, connection_file, timeout=120):
        """Fork a kernel with ``env`` in ``cwd`` serving ``connection_file``: a ForkedKernel.
        Raises ZygoteError (and stops this zygote for good) if it cannot."""
        with self.lock:
            if self.broken:
                raise ZygoteError("the judge's zygote failed earlier in this process")
            deadline = time.monotonic() + timeout
            try:
                if not self.ready:
                    self._line(deadline)                     # {"ready": true}: imports done
                    self.ready = True
                self.proc.stdin.write(json.dumps({"env": env, "cwd": str(cwd),
                                                  "connection_file": str(connection_file)}).encode() + b"\n")
                self.proc.stdin.flush()
                answer = self._line(deadline)
                if "error" in answer:
                    raise ZygoteError(f"the judge's zygote refused: {answer['error']}")
                pid, start = int(answer["pid"]), int(answer["start"])
            except ZygoteError:
                self.broken = True                           # a late answer is never read
                self._kill()
                raise
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.broken = True
                self._kill()
                raise ZygoteError(f"the judge's zygote failed: {exc}") from exc
        return ForkedKernel(self, env, cwd, connection_file, pid, start)

    @classmethod
    def close_all(cls):
        """Stop every zygote of this process (and the kernels they forked that still run)."""
        with cls._lock:
            live, cls._live = list(cls._live.values()), {}
        for z in live:
            z.close()

    def _kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass

    def close(self):
        import shutil
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _start_time(pid):
    """The process's start time (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


class ForkedKernel:
    """What the judge uses of a KernelManager, for a kernel the zygote forked. Signals go to
    its process group (its own session) only while that process is the one forked (same pid
    and start time)."""

    def __init__(self, zygote, env, cwd, connection_file, pid, start):
        self.zygote, self.env, self.cwd, self.connection_file = zygote, env, cwd, connection_file
        self.pid, self.start = pid, start

    @property
    def has_kernel(self):
        return self.is_alive()

    def is_alive(self):
        return _start_time(self.pid) == self.start

    def _signal(self, sig):
        if self.is_alive():
            for send in (os.killpg, os.kill):
                try:
                    send(self.pid, sig)
                    return
                except OSError:
                    continue

    def interrupt_kernel(self):
        self._signal(signal.SIGINT)

    def kill(self):
        self._signal(signal.SIGKILL)

    def shutdown_kernel(self, now=True):
        end = time.monotonic() + 5
        while self.is_alive() and time.monotonic() < end:
            self.kill()
            time.sleep(0.02)

    def restart_kernel(self, now=True):
        self.shutdown_kernel()
        fresh = Zygote.get(self.env).start(self.env, self.cwd, self.connection_file)
        self.zygote, self.pid, self.start = fresh.zygote, fresh.pid, fresh.start

    def blocking_client(self):
        """A client whose liveness is this process's, not the heartbeat's (a loaded machine
        can miss a beat)."""
        from jupyter_client import BlockingKernelClient
        kc = BlockingKernelClient()
        kc.load_connection_file(self.connection_file)

        async def alive():
            return self.is_alive()
        kc._async_is_alive, kc.is_alive = alive, self.is_alive
        return kc


def _child(request, ready):
    """In the forked process: become the kernel the request asks for (never returns).
    ``ready``: a pipe's write end, closed once the child leads a session of its own."""
    try:
        os.setsid()
        os.close(ready)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        zygote = os.getppid()
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        tempfile.tempdir = None                  # TMPDIR is the judge's own folder now
        # the zygote's random states were drawn once, at import: every judge draws its own
        import random
        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        threads = int(os.environ.get("OPENBLAS_NUM_THREADS") or 1)
        if threads > 1:                          # the zygote's BLAS ran one thread
            from threadpoolctl import threadpool_limits
            threadpool_limits(threads)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        from ipykernel.kernelapp import IPKernelApp
        IPKernelApp.launch_instance(argv=["-f", request["connection_file"],
                                          f"--IPKernelApp.parent_handle={zygote}"])
    finally:
        os._exit(0)


def main():
    """The zygote: import :data:`PRELOAD`, then fork one kernel per request line."""
    for line in PRELOAD:
        exec(line, {})
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    forked = []
    for line in sys.stdin.buffer:
        request = json.loads(line)
        threads = len(os.listdir("/proc/self/task"))
        if threads != 1:                          # a fork would copy no thread but this one
            out.write(json.dumps({"error": f"{threads} threads"}).encode() + b"\n")
            out.flush()
            continue
        ready, done = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _child(request, done)
        os.close(done)
        os.read(ready, 1)                         # b"" once the child has called setsid (or died)
        os.close(ready)
        start = _start_time(pid)
        forked = [(p, s) for p, s in forked if _start_time(p) == s] + [(pid, start)]
        out.write(json.dumps({"pid": pid, "start": start if start is not None else -1}).encode() + b"\n")
        out.flush()
    # stdin closed: the grading process is gone or done (a pool worker runs no atexit handler)
    for pid, start in forked:
        if start is not None and _start_time(pid) == start:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
    import shutil
    if os.path.basename(os.getcwd()).startswith("course-zygote-"):
        shutil.rmtree(os.getcwd(), ignore_errors=True)


if __name__ == "__main__":
    main()

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
``{"pid", "start"}``; it is single-threaded when it forks (one BLAS thread per kernel under
``--workers 2``; OpenBLAS re-creates its threads after a fork otherwise). The children are in
sessions of their own and are reaped by the system (SIGCHLD ignored). The zygote exits when
its stdin closes, that is, with the grading process that started it. Set
``COURSE_JUDGE_FORK=0`` to start every judge as a new Python process instead; if the zygote
cannot start or answer, the judge does that too.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time

#: What the zygote imports before it forks (the judge's own imports run in each kernel).
PRELOAD = ("from helpers import env", "import numpy", "import tensorflow", "import keras",
           "import matplotlib", "import ipykernel.kernelapp", "import helpers.grading.bridge")
#: Variables that differ from one judge to the next: never part of the zygote's environment.
PER_KERNEL = ("HOME", "MPLCONFIGDIR", "COURSE_STUDENT_KERNEL", "COURSE_CALL_TIMEOUT",
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
                z = cls._live[key] = cls(env)
            return z

    def __init__(self, env):
        self.dir = tempfile.mkdtemp(prefix="course-zygote-")
        # keras and matplotlib read HOME and MPLCONFIGDIR on import: the zygote's own folder
        zenv = {k: v for k, v in env.items() if k not in PER_KERNEL}
        zenv.update(HOME=self.dir, MPLCONFIGDIR=self.dir)
        self.proc = subprocess.Popen(list(self.command),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=zenv, cwd=self.dir,
                                     start_new_session=True)
        self.ready = self.broken = False
        self.lock = threading.Lock()
        atexit.register(self.close)

    def _line(self, deadline):
        out = b""
        while not out.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise ZygoteError("the judge's zygote did not answer in time")
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise ZygoteError("the judge's zygote exited")
            out += chunk
        return json.loads(out)

    def start(self, env, cwd, connection_file, timeout=120):
        """Fork a kernel with ``env`` in ``cwd`` serving ``connection_file``: a ForkedKernel."""
        with self.lock:
            deadline = time.monotonic() + timeout
            try:
                if not self.ready:
                    self._line(deadline)                     # {"ready": true}: imports done
                    self.ready = True
                self.proc.stdin.write(json.dumps({"env": env, "cwd": str(cwd),
                                                  "connection_file": str(connection_file)}).encode() + b"\n")
                self.proc.stdin.flush()
                answer = self._line(deadline)
                pid, start = int(answer["pid"]), int(answer["start"])
            except ZygoteError:
                self.broken = True
                raise
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.broken = True
                raise ZygoteError(f"the judge's zygote failed: {exc}") from exc
        return ForkedKernel(self, env, cwd, connection_file, pid, start)

    @classmethod
    def close_all(cls):
        """Stop every zygote of this process (their kernels are not touched)."""
        with cls._lock:
            live, cls._live = list(cls._live.values()), {}
        for z in live:
            z.close()

    def close(self):
        import shutil
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _start_time(pid):
    """The process's start time (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


class ForkedKernel:
    """What the judge uses of a KernelManager, for a kernel the zygote forked. Signals go to
    its process group only while that process is the one forked (same pid and start time)."""

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
            try:
                os.killpg(self.pid, sig)
            except OSError:
                pass

    def interrupt_kernel(self):
        self._signal(signal.SIGINT)

    def kill(self):
        self._signal(signal.SIGKILL)

    def shutdown_kernel(self, now=True):
        self.kill()
        end = time.monotonic() + 5
        while self.is_alive() and time.monotonic() < end:
            time.sleep(0.02)

    def restart_kernel(self, now=True):
        self.shutdown_kernel()
        fresh = self.zygote.start(self.env, self.cwd, self.connection_file)
        self.pid, self.start = fresh.pid, fresh.start

    def blocking_client(self):
        from jupyter_client import BlockingKernelClient
        kc = BlockingKernelClient()
        kc.load_connection_file(self.connection_file)
        return kc


def _child(request):
    """In the forked process: become the kernel the request asks for (never returns)."""
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        # the zygote's random states were drawn once, at import: every judge draws its own
        import random
        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        from ipykernel.kernelapp import IPKernelApp
        IPKernelApp.launch_instance(argv=["-f", request["connection_file"]])
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
    for line in sys.stdin.buffer:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _child(request)
        start = None
        for _ in range(100):                  # the child's /proc entry exists once forked
            start = _start_time(pid)
            if start is not None:
                break
            time.sleep(0.001)
        out.write(json.dumps({"pid": pid, "start": start if start is not None else -1}).encode() + b"\n")
        out.flush()
    # stdin closed: the grading process is gone (a pool worker does not run atexit handlers)
    import shutil
    if os.path.basename(os.getcwd()).startswith("course-zygote-"):
        shutil.rmtree(os.getcwd(), ignore_errors=True)


if __name__ == "__main__":
    main()

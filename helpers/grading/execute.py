"""nbgrader's Execute step, hardened: sandboxed kernel, limits, guarded test cells.

:class:`GuardedExecute` replaces nbgrader's ``Execute`` in the autograde
preprocessors (see :func:`helpers.grading.grade_job`). Per notebook it

* starts the kernel through :class:`SandboxKernelManager` (bubblewrap + cgroup,
  :mod:`helpers.sandbox`), with :func:`helpers.guard.capture` run at kernel start;
* runs each graded test cell that the source notebook gives to the judge in the trusted
  kernel of :mod:`helpers.grading.judge` (no student code runs there), and every other
  graded test cell between :func:`helpers.guard.restore` and :func:`helpers.guard.finish`,
  counting it as passed only if it ran to its end;
* never lets a test cell's output award partial credit (nbgrader reads a number, or full
  points for anything else, from an ``execute_result``: a student's function can print one);
* stops printing past ``output_mb``; after a cell runs past ``cell_timeout`` and
  ignores the interrupt, or when the kernel dies (memory, CPU, ``os._exit``), or the
  whole notebook runs past ``wall_timeout``, marks every cell not run with that
  reason (zero for what did not run) instead of failing the whole submission.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import threading
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbformat.notebooknode import NotebookNode
from traitlets import Any, Enum, Unicode

from nbgrader.preprocessors import Execute

from . import sandbox as sb
from .judge import INSTALL_WIRE, TrustedKernel


#: Jobs running in this process, by id (traitlets deep-copies config values, so the
#: preprocessor gets an id and looks its Job up here).
JOBS = {}


class Job:
    """Everything one submission's execution needs and what happened to it."""

    def __init__(self, limits, workdir, runtime_dir, log_path, *, sandbox=True, threads=1,
                 imports="", names=(), protect=(), guard=True, trusted=None, draws=""):
        self.limits = limits
        self.workdir, self.runtime_dir, self.log_path = Path(workdir), Path(runtime_dir), Path(log_path)
        self.sandbox, self.threads, self.guard = sandbox, threads, guard
        self.imports, self.names, self.protect = imports, tuple(names), tuple(protect)
        self.trusted = dict(trusted or {})   # grade_id -> source of the cells the judge runs
        self.draws = draws                   # the key of the judge's draws (helpers.grading.draws)
        self.judge = None                    # the TrustedKernel, started at the first such cell
        self.cgroup = None
        self.km = None
        self.stopped = ""            # why no further cell runs ('' while running)
        self.notes = []              # reasons shown in the gradebook/CSV
        self.out_bytes = 0
        self.output_capped = False
        self._lock = threading.Lock()

    def note(self, text):
        if text and text not in self.notes:
            self.notes.append(text)

    def stop(self, reason):
        with self._lock:
            if not self.stopped:
                self.stopped = reason
                self.note(reason)

    def kill(self, reason=None):
        """Kill the kernel and everything it started (any thread may call this)."""
        if reason:
            self.stop(reason)
        if self.cgroup is not None:
            self.cgroup.kill()
        km = self.km
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError, OSError):
                try:
                    proc.kill()
                except OSError:
                    pass

    def death_reason(self):
        """Why the kernel died, in words."""
        if self.stopped:
            return self.stopped
        if self.cgroup is not None and self.cgroup.oom_killed():
            return f"used more than {self.limits.memory_mb} MiB of memory"
        proc = getattr(getattr(self.km, "provisioner", None), "process", None)
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=5)
            except Exception:  # noqa: BLE001
                code = proc.poll()
        if code is not None and code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
            return f"used more than {self.limits.cpu_seconds} s of CPU time"
        if code is not None and code in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
            return f"wrote a file larger than {self.limits.output_mb} MB"
        if code is not None and code in (-signal.SIGKILL, 128 + signal.SIGKILL) and \
                self.cgroup is not None and self.cgroup.oom_killed():
            return f"used more than {self.limits.memory_mb} MiB of memory"
        return f"kernel died (exit status {code})" if code is not None else "kernel died"

    def cleanup(self):
        if self.judge is not None:
            self.judge.shutdown()
            self.judge = None
        if self.cgroup is not None:
            if self.cgroup.pids_hit():
                self.note(f"tried to run more than {self.limits.max_processes} processes/threads")
            if self.cgroup.oom_killed() and not self.stopped:
                self.note(f"hit the memory limit ({self.limits.memory_mb} MiB)")
            self.cgroup.remove()
            self.cgroup = None


class SandboxKernelManager(AsyncKernelManager):
    """Starts the kernel inside the sandbox; talks to it over Unix sockets."""

    job = Any(None, allow_none=True)

    def __init__(self, job=None, **kwargs):
        super().__init__(**kwargs)
        self.job = job
        self.transport = "ipc"
        self.connection_file = str(Path(job.runtime_dir) / f"kernel-{secrets.token_hex(6)}.json")
        self.cache_ports = False
        # A signal to the process group may not reach a kernel inside its PID
        # namespace; an interrupt_request message makes the kernel signal itself.
        self.kernel_spec.interrupt_mode = "message"

    def client(self, **kwargs):
        """The grader's client. What the kernel publishes waits in its sockets while a judged
        test runs: at most 16 messages wait (each is bounded by the kernel's memory limit),
        so a flood cannot fill the grader's memory. Messages are not capped in size: the
        kernel batches a fast loop's prints into one large message, and dropping it would
        lose the cell's end (the output cap, ``output_mb``, applies after reading)."""
        import zmq
        kc = super().client(**kwargs)
        kc.context.setsockopt(zmq.RCVHWM, 16)
        return kc

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        job = self.job
        cmd = list(kernel_cmd)
        if job.guard:
            protect = tuple(job.protect)
            cmd.append(f"--IPKernelApp.exec_lines=__import__('helpers.guard').guard.capture({protect!r})")
        job.cgroup = sb.Cgroup.create(job.limits)
        job.km = self
        kw["env"] = sb.kernel_env(job.threads, sandbox=job.sandbox)
        if job.sandbox:
            kw["cwd"] = str(job.runtime_dir)
        else:
            kw["cwd"] = str(job.workdir)
        wrapped = sb.kernel_command(cmd, workdir=job.workdir, runtime_dir=job.runtime_dir,
                                    limits=job.limits, cgroup=job.cgroup, log_path=job.log_path,
                                    sandbox=job.sandbox)
        await super()._async_launch_kernel(wrapped, **kw)
        if job.trusted and job.judge is None:
            # The judge boots (its own imports: TensorFlow for most quizzes) while the
            # student's kernel does; it reaches that kernel only when a judged test runs.
            job.judge = TrustedKernel(job, self.get_connection_info(session=False))


def _one_line(text, limit=200):
    """``text`` as one printable line of at most ``limit`` characters (for an instructor's note)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:limit]


def _error(ename, evalue):
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


def _no_partial_credit(outputs):
    """Outputs with every ``execute_result`` turned into ``display_data`` (same picture, no score)."""
    out = []
    for o in outputs:
        if o.get("output_type") == "execute_result":
            o = NotebookNode(output_type="display_data", data=o.get("data", {}),
                             metadata=o.get("metadata", {}))
        out.append(o)
    return out


def _is_idle_of(frames, msg_id):
    """Whether raw IOPub ``frames`` are the ``idle`` status of the request ``msg_id`` (bytes):
    read from the header, parent header and content frames after the delimiter, no more."""
    try:
        at = frames.index(b"<IDS|MSG>")
        header, parent, content = frames[at + 2], frames[at + 3], frames[at + 5]
    except (ValueError, IndexError):
        return False
    if b'"status"' not in header or msg_id not in parent:
        return False
    try:
        content, parent = json.loads(content), json.loads(parent)
        return content.get("execution_state") == "idle" and parent.get("msg_id") == msg_id.decode()
    except (ValueError, AttributeError):      # not JSON, or not an object
        return False


def _is_test_cell(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


class GuardedExecute(Execute):
    """nbgrader's Execute with the sandbox, the limits and the guard (see module doc)."""

    job_id = Unicode("").tag(config=True)
    #: After the last cell the student's kernel is killed, not asked to shut down: its
    #: ``atexit`` work (TensorFlow's teardown: about a CPU-second) decides nothing.
    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate").tag(config=True)

    @property
    def job(self):
        return JOBS[self.job_id]

    def create_kernel_manager(self):
        if not self.kernel_name:
            self.kernel_name = self.nb.metadata.get("kernelspec", {}).get("name") or "python3"
        self.km = SandboxKernelManager(job=self.job, kernel_name=self.kernel_name,
                                       config=self.config)
        return self.km

    # -- output: limit its size, recognise the guard's tokens
    _tokens = None

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg.get("msg_type") == "stream" and self._tokens:
            text = content.get("text", "")
            for tok in list(self._tokens):
                if tok in text:
                    self._tokens[tok] = True
                    text = re.sub(rf"{re.escape(tok)}\n?", "", text)
            if not text:
                return None
            content["text"] = text
        size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in content.get("data", {}).values())
        job = self.job
        job.out_bytes += size
        if job.out_bytes > job.limits.output_mb * 2**20:
            if not job.output_capped:
                job.output_capped = True
                job.note(f"printed more than {job.limits.output_mb} MB; the rest was dropped")
                outs.append(NotebookNode(output_type="stream", name="stderr",
                                         text=f"[grader: output past {job.limits.output_mb} MB dropped]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)

    # -- timeouts: interrupt; if the kernel stays busy, kill it
    _timed_out = False

    async def _async_handle_timeout(self, timeout, cell=None):
        self._timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    _silent_error = ""

    async def _silent(self, code, timeout):
        """Run code without history; return its stdout text, or None if no reply in time
        (what an error reply raised is kept in ``_silent_error`` until the next call)."""
        chunks = []
        self._silent_error = ""

        def hook(msg):   # keeps a bounded tail: the grader's tokens, not a student's flood
            if msg["msg_type"] == "stream":
                chunks.append(str(msg["content"].get("text", ""))[-4096:])
                del chunks[:-64]
        try:
            reply = await ensure_async(self.kc.execute_interactive(
                code, silent=False, store_history=False, allow_stdin=False,
                output_hook=hook, timeout=timeout, stop_on_error=False))
        except (TimeoutError, asyncio.TimeoutError):
            return None
        except Exception:  # noqa: BLE001 - a dead kernel, closed channels
            return None
        content = reply.get("content", {})
        if content.get("status") != "ok":
            self._silent_error = _one_line(f"{content.get('ename', '')}: {content.get('evalue', '')}")
            return "".join(chunks) + "\n<error>"
        return "".join(chunks)

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        job = self.job
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        where = f"cell {cell_index + 1}"
        if job.stopped:
            cell.outputs = [_error("NotRun", f"not run: {job.stopped}")]
            return cell
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if _is_test_cell(cell) and grade_id in job.trusted:
            cell = await self._judge_cell(cell, cell_index, grade_id, where)
            self.nb["cells"][cell_index] = cell
            return cell
        self._timed_out = False
        guarded = job.guard and _is_test_cell(cell)
        original = cell.source
        try:
            if guarded:
                tok = "grader-" + secrets.token_hex(12)
                out = await self._silent(
                    f"__import__('helpers.guard').guard.restore({tok!r}, {job.imports!r}, {job.names!r})",
                    timeout=max(30, job.limits.cell_timeout))
                if out is None or tok not in out:
                    if job.km is not None and not await ensure_async(job.km.is_alive()):
                        raise DeadKernelError("Kernel died")
                    cell.outputs = [_error("GraderError", "the grader could not prepare this test "
                                           "(the kernel no longer runs code as sent)")]
                    job.note(f"{where}: the kernel no longer ran the grader's code as sent"
                             + (f" ({self._silent_error})" if out is not None and self._silent_error else ""))
                    return cell
                tok = "grader-" + secrets.token_hex(12)
                self._tokens = {tok: False}
                cell.source = original.rstrip() + f"\n__import__('helpers.guard').guard.finish({tok!r})\n"
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            if guarded:
                errors = [o for o in cell.outputs if o.get("output_type") == "error"]
                if not errors and not self._tokens.get(tok):
                    cell.outputs.append(_error("GraderError", "this test did not run to its end "
                                               "(its code or its output was tampered with)"))
                    job.note(f"{where}: a test did not run to its end")
        except CellTimeoutError:
            self._timed_out = True
            cell.outputs = list(cell.get("outputs", [])) + [_error(
                "CellTimeoutError", f"{where} ran past {job.limits.cell_timeout} s")]
        except DeadKernelError:
            reason = job.death_reason()
            job.stop(reason)
            cell.outputs = list(cell.get("outputs", [])) + [_error("KernelDied", f"{where}: {reason}")]
        finally:
            cell.source = original
            self._tokens = None
            if _is_test_cell(cell):
                cell.outputs = _no_partial_credit(cell.get("outputs", []))
        if self._timed_out and not job.stopped:
            job.note(f"{where} ran past {job.limits.cell_timeout} s")
            # Interrupted: is the kernel free again? If not, stop here.
            if await self._silent("pass", timeout=10) is None:
                job.kill(f"{where} ran past {job.limits.cell_timeout} s and did not stop")
        self.nb["cells"][cell_index] = cell
        return cell

    async def _judge_cell(self, cell, cell_index, grade_id, where):
        """Run a test cell in the trusted kernel; the student's kernel only answers calls."""
        job = self.job
        if cell.source != job.trusted[grade_id]:
            cell.outputs = [_error("GraderError", "this test cell is not the assignment's")]
            job.note(f"{where}: a test cell was not the assignment's")
            return cell
        setup = INSTALL_WIRE
        if job.guard:     # defence in depth: the course code that runs beside the student's
            setup += (f"__import__('helpers.guard').guard.restore("      # (batches, tracing)
                      f"{'grader-' + secrets.token_hex(12)!r})\n")
        if await self._silent(setup, timeout=max(30, job.limits.cell_timeout)) is None:
            if job.km is not None and not await ensure_async(job.km.is_alive()):
                reason = job.death_reason()
                job.stop(reason)
                cell.outputs = [_error("KernelDied", f"{where}: {reason}")]
            else:
                cell.outputs = [_error("GraderError", "your notebook's kernel did not answer the grader")]
            return cell
        try:
            before = [c.source for c in self.nb.cells[:cell_index]
                      if c.cell_type == "code" and not _is_test_cell(c)]
            outputs = await job.judge.run_cell(cell.source, job.limits.cell_timeout, before, grade_id)
        except TimeoutError:
            outputs = [_error("CellTimeoutError", f"{where} ran past {job.limits.cell_timeout} s")]
            job.note(f"{where} ran past {job.limits.cell_timeout} s")
            if await self._silent("pass", timeout=10) is None:
                job.kill(f"{where} ran past {job.limits.cell_timeout} s and did not stop")
        except Exception as exc:  # noqa: BLE001 - the judge failed: this cell, not the run
            outputs = [_error("GraderError", f"the grader's judge failed on this test "
                                             f"({type(exc).__name__}: {str(exc)[:200]})")]
            job.note(f"{where}: the judge failed ({type(exc).__name__})")
        await self._drain_iopub()
        kept = []
        for out in _no_partial_credit(outputs):   # the judge's outputs count toward output_mb
            job.out_bytes += len(json.dumps(out))
            if job.out_bytes > job.limits.output_mb * 2**20:
                if not job.output_capped:
                    job.output_capped = True
                    job.note(f"printed more than {job.limits.output_mb} MB; the rest was dropped")
                kept.append(_error("OutputLimit", f"output past {job.limits.output_mb} MB dropped"))
                break
            kept.append(out)
        cell.outputs = kept
        return cell

    async def _drain_iopub(self, seconds=10, quiet=0.05, resend=0.25):
        """Drop what the student's kernel published while the judge called it.

        Every call of the judge leaves a few IOPub messages (busy, the answer, idle) that this
        client receives too; thousands of them (a loop of calls) would make the next cell
        wait past nbclient's IOPub timeout. Raw frames are dropped, unparsed, until the
        ``idle`` status of a marker: an empty silent request this client sends the kernel once
        nothing has come for ``quiet`` seconds (the kernel publishes in order, so what the
        judge's calls left has gone by then). The kernel's publisher drops messages while
        this client's queue is full, a marker's idle among them: a marker not answered
        within ``resend`` seconds is followed by another, unless the kernel has died. At most
        ``seconds`` in all (a kernel that never answers leaves the rest to nbclient, which
        skips messages that are not its own). Nothing here is graded: a kernel that fakes a
        marker's idle only keeps its own messages in the way of its next cell.
        """
        import time
        start = last_sent = time.monotonic()
        markers = []
        try:
            sock = self.kc.iopub_channel.socket
            while time.monotonic() - start < seconds:
                if await sock.poll(int(quiet * 1000)):
                    frames = await sock.recv_multipart()
                    if any(_is_idle_of(frames, m) for m in markers):
                        return
                elif not markers or time.monotonic() - last_sent > resend:
                    if markers and not await ensure_async(self.km.is_alive()):
                        return               # it died: nothing more will come
                    markers.append(self.kc.execute("", silent=True, store_history=False,
                                                   allow_stdin=False).encode())
                    last_sent = time.monotonic()
        except Exception:  # noqa: BLE001 - closed channels, a dead kernel
            pass

    # nbconvert's preprocess_cell calls the sync wrapper, bound at class creation
    execute_cell = run_sync(async_execute_cell)


def watchdog(job, seconds):
    """Kill the job's kernel after ``seconds`` (wall time for the whole notebook)."""
    timer = threading.Timer(seconds, job.kill, args=(f"the notebook ran past {seconds} s in total",))
    timer.daemon = True
    timer.start()
    return timer

"""The trusted kernel: where graded test cells run, beside the student's kernel, never inside it.

Per notebook, :class:`helpers.grading.execute.GuardedExecute` runs the student's cells in
their sandboxed kernel as before, and each graded test cell that the source notebook marks
for the judge (``course.judge``, see :func:`trusted_cells`) in a :class:`TrustedKernel`: a
second IPython kernel that runs only the source notebook's import lines and its test cells,
exactly as the source notebook has them. The test reaches the student's functions through
:mod:`helpers.grading.bridge` (plain data over the wire), so its assertions, expected values
and scores are computed where no student code runs: the student cannot patch the checkers,
NumPy, the guard, the grader's code or IPython's hooks of this kernel, print the hidden
tests, or leave a forged result in the test cell's outputs.
"""
from __future__ import annotations

import ast
import asyncio
import builtins
import functools
import inspect
import json
import os
import queue
import tempfile
import time
from pathlib import Path

from nbformat.v4 import output_from_msg

from . import bridge, draws, judge_zygote, leftovers, sandbox, wire

WIRE_SOURCE = (Path(__file__).with_name("wire.py")).read_text()

#: Code run (silently) in the student's kernel before each judged cell: the wire's server.
INSTALL_WIRE = ("import sys as _s, types as _t\n"
                "_m = _t.ModuleType('__course_wire__')\n"
                f"exec(compile({WIRE_SOURCE!r}, '<course wire>', 'exec'), _m.__dict__)\n"
                "_s.modules['__course_wire__'] = _m\n"
                "del _s, _t, _m\n")


def trusted_cells(source_nb):
    """{grade_id: source} of the test cells the judge runs, from the source notebook.

    The notebook's ``course.judge`` metadata says where its test cells run: ``"trusted"``
    (the judge) or ``"kernel"`` (the student's kernel, behind the guard; the default while
    an assignment's tests still need it); a cell's own ``course.judge`` overrides it.
    """
    default = source_nb.metadata.get("course", {}).get("judge", "kernel")
    out = {}
    for cell in source_nb.cells:
        meta = cell.get("metadata", {})
        nbg = meta.get("nbgrader", {})
        if cell.cell_type == "code" and nbg.get("grade") and not nbg.get("solution"):
            if meta.get("course", {}).get("judge", default) == "trusted":
                out[nbg["grade_id"]] = cell.source
    return out


def bound_names(tree):
    """Names a cell binds itself: assignments, defs, arguments, imports, loop/with/except targets."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def static_scope(sources):
    """What the submitted code cells bind at top level, read from their text (never run).

    Returns {"imports": {name: dotted name}, "functions": {name: source}}: ``import
    tensorflow as T`` gives ``T -> tensorflow``, ``from helpers.checks.x import ref as r``
    gives ``r -> helpers.checks.x.ref``; the last ``def``/``class`` of each name wins. The
    judge's static checks of method use it where a proxy has no ``__globals__``.
    """
    imports, functions = {}, {}
    for text in _parsed(sources):
        for node in text[1].body:
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        imports[a.asname] = a.name
                    else:
                        top = a.name.split(".")[0]
                        imports[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if a.name != "*":
                        imports[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                functions[node.name] = ast.get_source_segment(text[0], node) or ""
                imports.pop(node.name, None)
    return {"imports": imports, "functions": functions}


def _parsed(sources):
    """(text, tree) of each source that parses, IPython magics and shell lines dropped."""
    for src in sources:
        text = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!")))
        try:
            yield text, ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):   # a student's text
            continue


def definitions(sources, names):
    """{name: source of its last top-level definition} in the submitted code cells ``sources``.

    What the judge's static checks read (``fn.__course_source__``): the submitted text itself,
    not what the student's kernel says about it. A name defined some other way (``exec``, a
    module) has no entry.
    """
    found = {}
    wanted = set(names)
    for text, tree in _parsed(sources):
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound = {node.name}
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                bound = {n.id for tg in targets for n in ast.walk(tg) if isinstance(n, ast.Name)}
            else:
                continue
            for name in bound & wanted:
                found[name] = ast.get_source_segment(text, node) or ""
    return found


def code_index(sources):
    """Where each piece of code of the submitted cells is defined, by its code's digest.

    Every top-level statement is compiled on its own (never run) and each function or class
    in it keyed by :func:`helpers.grading.wire.code_digest` (a class by the sorted digests
    of its own functions). Returns ({key: statement number}, [statement texts]): the judge
    matches the objects the student's kernel binds to each name against it, so it reads the
    text of the code that really runs, not of a decoy ``def`` rebound through ``globals()``.
    """
    index, texts = {}, []
    for src in sources:
        for keys, text in _cell_code(src):
            texts.append(text)
            for key in keys:
                index[key] = len(texts) - 1
    return index, texts


@functools.lru_cache(maxsize=256)
def _cell_code(src):
    """[(code keys, statement text)] of one cell's top-level statements (each cell is
    compiled once per notebook, not once per judged cell)."""
    out = []
    for text, tree in _parsed([src]):
        for node in tree.body:
            try:
                code = compile(ast.Module([node], []), "<cell>", "exec", dont_inherit=True)
            except (SyntaxError, ValueError, RecursionError, MemoryError, TypeError):
                continue
            out.append((tuple(_code_keys(code)), ast.get_source_segment(text, node) or ""))
    return tuple(out)


def _code_keys(code):
    """The keys of every function and class body nested in ``code``."""
    keys, todo = [], [code]
    while todo:
        c = todo.pop(0)
        inner = [k for k in c.co_consts if isinstance(k, type(code))]
        functions = [k for k in inner if k.co_flags & inspect.CO_OPTIMIZED
                     and (k.co_name == "<lambda>" or not k.co_name.startswith("<"))]
        if c is not code and c.co_flags & inspect.CO_OPTIMIZED:
            keys.append(wire.code_digest(c))
        elif c is not code:                                  # a class body
            keys.append(wire.class_key(wire.code_digest(k) for k in functions))
        todo += inner
    return keys


def student_names(source, imports):
    """Names a test cell reads that neither it, the source's imports nor builtins define."""
    tree = ast.parse(source)
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return sorted(loaded - bound_names(tree) - bound_names(ast.parse(imports or ""))
                  - set(dir(builtins)))


class TrustedKernel:
    """The judge's kernel for one notebook: started as soon as the student's kernel is launched
    (both boot at once; forked from :mod:`~helpers.grading.judge_zygote` where it can be),
    runs the source's test cells. Its blocking client lives in a thread
    of its own (with its own event loop: the grader's loop is busy running the notebook);
    :meth:`run_cell` is awaited.
    """

    def __init__(self, job, student_info):
        import concurrent.futures
        self._closing = False
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, initializer=lambda: asyncio.set_event_loop(asyncio.new_event_loop()))
        self._started = self._thread.submit(self._start, job, student_info)

    def _start(self, job, student_info):
        from jupyter_client import KernelManager
        info = dict(student_info)
        if isinstance(info.get("key"), bytes):
            info["key"] = info["key"].decode()
        self.job = job
        self.dir = tempfile.mkdtemp(prefix=leftovers.prefix("judge"))
        env = sandbox.kernel_env(job.threads, sandbox=False)
        env[bridge.CONNECTION_ENV] = json.dumps(info)
        env[bridge.TIMEOUT_ENV] = str(job.limits.cell_timeout)
        env[draws.ENV] = job.draws
        # its temporary files too (TensorFlow's autograph leaves one per function it converts
        # in a kernel that is killed): removed with the folder
        env["HOME"] = env["MPLCONFIGDIR"] = env["TMPDIR"] = self.dir
        # Unix sockets in a private folder: nothing listens on the network for the judge.
        ip, connection_file = os.path.join(self.dir, "judge"), os.path.join(self.dir, "judge.json")
        self.km = self._forked(env, ip, connection_file)
        if self.km is None:                         # no zygote: a new Python process
            if os.path.exists(connection_file):
                os.remove(connection_file)
            self.km = KernelManager(kernel_name="python3", transport="ipc", ip=ip,
                                    connection_file=connection_file)
            self.km.start_kernel(env=env, cwd=self.dir)
        self._check_closing()
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)         # raises at once if the kernel was killed
        self._setup()

    def _forked(self, env, ip, connection_file):
        """A judge kernel forked from this process's zygote (TensorFlow already imported:
        :mod:`helpers.grading.judge_zygote`), or None where there is none."""
        if not judge_zygote.enabled():
            return None
        import uuid

        from jupyter_client.connect import write_connection_file
        write_connection_file(connection_file, transport="ipc", ip=ip, key=uuid.uuid4().hex.encode(),
                              kernel_name="python3")
        try:
            return judge_zygote.Zygote.get(env).start(env, self.dir, connection_file)
        except judge_zygote.ZygoteError:
            return None

    def _setup(self, seconds=300):
        """Import the bridge and the source's imports in the judge's kernel. The reply is polled
        a second at a time, so a :meth:`shutdown` meanwhile ends the wait within a second."""
        setup = "import helpers.grading.bridge as __course_judge__\n" + (self.job.imports or "")
        msg_id = self.kc.execute(setup, silent=True, store_history=False, allow_stdin=False)
        deadline = time.monotonic() + seconds
        while True:
            self._check_closing()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the grader's judge could not start: its imports ran past {seconds} s")
            try:
                reply = self.kc.get_shell_msg(timeout=1)
            except queue.Empty:
                continue
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            content = reply.get("content", {})
            if content.get("status") != "ok":
                raise RuntimeError(f"the grader's judge could not start: "
                                   f"{content.get('ename', 'Error')}: {content.get('evalue', '')}")
            return

    def _check_closing(self):
        """Stop a start that :meth:`shutdown` has overtaken (its kernel is being killed)."""
        if self._closing or not self.km.is_alive():
            raise RuntimeError("the judge was stopped while it started")

    def _run(self, code, timeout, store_history=False):
        """Execute ``code``; return (outputs as nbformat nodes, error text or '')."""
        outputs = []

        def hook(msg):
            kind = msg.get("msg_type")
            if kind == "clear_output":
                outputs.clear()
            elif kind in ("stream", "display_data", "execute_result", "error"):
                outputs.append(output_from_msg(msg))
        reply = self.kc.execute_interactive(code, store_history=store_history, allow_stdin=False,
                                            output_hook=hook, timeout=timeout)
        content = reply.get("content", {})
        error = "" if content.get("status") == "ok" else \
            f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"
        return outputs, error

    async def run_cell(self, source, timeout, submitted=(), grade_id=""):
        """Run a test cell as the source notebook has it; return its outputs.

        submitted: the sources of the submission's code cells before this one (for
        ``__course_source__``); grade_id: the cell's id (its draws' stream). Raises TimeoutError when it runs past ``timeout`` seconds (the
        kernel is interrupted, or restarted if it does not stop).
        """
        await asyncio.wrap_future(self._started)
        return await asyncio.wrap_future(self._thread.submit(self._run_cell, source, timeout,
                                                             submitted, grade_id))

    def _run_cell(self, source, timeout, submitted, grade_id=""):
        names = student_names(source, self.job.imports)
        sources, scope = definitions(submitted, names), static_scope(submitted)
        index = code_index(submitted)
        try:
            outputs, error = self._run(
                f"__course_judge__.bind(globals(), {names!r}, {sources!r}, {scope!r}, {index!r}, "
                f"cell={grade_id!r})",
                timeout)
            if error:
                return outputs
            return self._run(source, timeout, store_history=True)[0]
        except TimeoutError as timeout:
            try:
                self._stop_running()
            except Exception as exc:  # noqa: BLE001 - not restarted: later tests say so, this one timed out
                raise timeout from exc
            raise

    def _stop_running(self):
        self.km.interrupt_kernel()
        try:
            self._run("pass", timeout=10)
        except TimeoutError:
            self.km.restart_kernel(now=True)
            self.kc.wait_for_ready(timeout=120)
            self._setup()

    def shutdown(self, timeout=60):
        """Stop the judge's kernel and remove its folder. A judge still starting (a notebook
        that ended before its first judged test) has its kernel killed, which ends the start
        within a second; the stop itself runs on the judge's own thread, after the start."""
        self._closing = True
        if not self._started.done():
            km = getattr(self, "km", None)
            if isinstance(km, judge_zygote.ForkedKernel):
                km.kill()
            proc = getattr(getattr(km, "provisioner", None), "process", None)
            if proc is not None and proc.poll() is None:
                proc.kill()
        try:
            self._thread.submit(self._shutdown).result(timeout=timeout)
        except Exception:  # noqa: BLE001 - already gone
            pass
        self._thread.shutdown(wait=False, cancel_futures=True)

    def _shutdown(self):
        """Runs on the judge's thread: whatever part of the start happened is undone."""
        import shutil
        kc, km = getattr(self, "kc", None), getattr(self, "km", None)
        try:
            if kc is not None:
                kc.stop_channels()
        finally:
            try:
                if km is not None and km.has_kernel:
                    km.shutdown_kernel(now=True)
            finally:
                if getattr(self, "dir", None):
                    shutil.rmtree(self.dir, ignore_errors=True)

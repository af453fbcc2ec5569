"""The judge's end of the wire: the student's functions, seen from the trusted kernel.

Graded test cells run in a *trusted kernel* that never executes student code (see
:mod:`helpers.grading.judge`). Before a test cell runs there, :func:`bind` gives each name
the cell reads from the student's notebook (``conv_forward_naive``, ``CaptioningRNN``,
``claims``) a value: plain data is copied over (:mod:`helpers.grading.wire`), anything else
becomes a :class:`Remote`, a proxy that calls, reads and writes the object in the student's
kernel and brings the answers back as data. Assertions, expected values, numeric gradients
and scores are then computed here, where the student's code cannot reach them.

Course objects cannot be passed *into* student code (a test passes data, a handle the
student's code returned, or a course model made by a :mod:`helpers.rebuildable` constructor,
which the student's kernel makes again from the same call); course code that must run next
to the student's code, a training loop, runs there through :meth:`Remote.__course_run__` and
only its result comes back.
"""
from __future__ import annotations

import builtins
import json
import os
import time

from helpers import rebuildable

from . import wire

#: Environment variable holding the student kernel's connection info (JSON).
CONNECTION_ENV = "COURSE_STUDENT_KERNEL"
#: Environment variable holding the seconds one call into student code may take.
TIMEOUT_ENV = "COURSE_CALL_TIMEOUT"

#: The largest message the judge accepts from the student's kernel, and how many of them
#: may wait unread (the student's kernel publishes everything it prints to the judge too).
MAX_ANSWER_BYTES = 32 * 2**20
MAX_WAITING = 32
#: The most lists, tuples and dicts one answer may hold: decoding ``[[], [], ...]`` costs
#: ~30 times its size in Python objects, so it is counted before it is parsed.
MAX_CONTAINERS = 200_000

_ERRORS = {name: obj for name, obj in vars(builtins).items()
           if isinstance(obj, type) and issubclass(obj, Exception)}


class StudentCodeError(Exception):
    """The student's code raised an exception whose type the judge does not re-raise as is."""


class StudentKernel:
    """A client of the student's kernel that sends :mod:`~helpers.grading.wire` requests."""

    def __init__(self, connection_info, timeout=60.0):
        import zmq
        from jupyter_client import BlockingKernelClient
        context = zmq.Context()   # its sockets drop a message past the cap instead of buffering it
        context.setsockopt(zmq.MAXMSGSIZE, MAX_ANSWER_BYTES)
        context.setsockopt(zmq.RCVHWM, MAX_WAITING)
        self.kc = BlockingKernelClient(context=context)
        self.kc.load_connection_info(connection_info)
        self.kc.start_channels(shell=True, iopub=True, stdin=False, hb=True, control=True)
        self.timeout = float(timeout)
        time.sleep(0.2)   # let the iopub subscription settle before the first request

    def close(self):
        self.kc.stop_channels()

    def _drain(self, seconds=0.5):
        """Drop what the kernel printed since the last answer, for at most ``seconds``: a
        kernel that prints without end must not hold the judge here (the request's own loop
        skips every message that is not its answer, under the call's deadline)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self.kc.get_iopub_msg(timeout=0)
            except Exception:  # noqa: BLE001 - queue.Empty
                return

    def _interrupt(self):
        msg = self.kc.session.msg("interrupt_request", content={})
        self.kc.control_channel.send(msg)

    def request(self, op, **fields):
        """Send one request; return its decoded answer or raise the student's exception."""
        fields = {k: (wire.encode(v, self._outgoing) if k in _ENCODED else v)
                  for k, v in fields.items()}
        text = json.dumps({"op": op, **fields})
        self._drain()
        msg = self.kc.session.msg("execute_request", {
            "code": "__import__('sys').modules['__course_wire__'].serve()", "silent": False,
            "store_history": False, "user_expressions": {}, "allow_stdin": False,
            "stop_on_error": False}, metadata={"course": text})
        self.kc.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        answer, deadline = None, time.monotonic() + self.timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._interrupt()
                    raise TimeoutError(f"your code did not return within {self.timeout:g} s")
                try:
                    msg = self.kc.get_iopub_msg(timeout=min(1.0, left))
                except Exception:  # noqa: BLE001 - queue.Empty: is the kernel still alive?
                    if not self.kc.is_alive():
                        raise RuntimeError("your notebook's kernel died while the test called it") \
                            from None
                    continue
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg.get("msg_type"), msg.get("content", {})
                if kind == "display_data" and wire.MIME in content.get("data", {}):
                    answer = content["data"][wire.MIME]
                elif kind == "status" and content.get("execution_state") == "idle":
                    break
        except KeyboardInterrupt:   # the judge's own cell timed out: stop the student's code too
            self._interrupt()
            raise
        return self._answer(answer)

    def _answer(self, text):
        if text is None:
            raise RuntimeError("your notebook's kernel gave no answer to the grader's call "
                               "(did your code replace the grader's helpers in the kernel?)")
        if not isinstance(text, str):
            raise wire.WireError("the answer is not JSON text")
        if text.count("{") + text.count("[") > MAX_CONTAINERS:
            raise wire.WireError(f"the answer holds more than {MAX_CONTAINERS} containers")
        answer = json.loads(text)
        if type(answer) is not dict:
            raise wire.WireError("the answer is not a dict")
        if "error" in answer:
            ename, evalue, trace = (list(answer["error"]) + ["", "", ""])[:3]
            ename, evalue, trace = str(ename)[:100], str(evalue)[:4000], str(trace)[-8000:]
            cls = _ERRORS.get(ename, StudentCodeError)
            text = evalue if cls is not StudentCodeError else f"{ename}: {evalue}"
            err = cls(text)
            err.student_traceback = str(trace)
            raise err
        return wire.decode(answer.get("ok"), self._incoming)

    def _outgoing(self, value):
        if isinstance(value, Remote):
            return {"h": value._spec["h"]}
        recipe = rebuildable.recipe_of(value)
        if recipe is not None:       # a course model: the student's kernel makes its own copy
            module, name, args, kwargs = recipe
            return {"recipe": [module, name], "args": wire.encode(list(args), self._outgoing),
                    "kwargs": wire.encode(kwargs, self._outgoing)}
        raise TypeError(f"the grader cannot pass a {type(value).__name__} to your code")

    def _incoming(self, spec):
        if "h" in spec and type(spec["h"]) is int:
            return Remote(self, {"h": spec["h"], "type": str(spec.get("type", "?"))[:200],
                                 "repr": str(spec.get("repr", ""))[:200]})
        raise wire.WireError("unknown value from the student's kernel")


_ENCODED = {"obj", "args", "kwargs", "value", "key"}


class Remote:
    """An object that lives in the student's kernel: call it, read its attributes and items.

    Answers come back as data (copies); dicts and lists read as attributes or items stay
    remote, so ``model.params[name] = value`` changes the student's model.
    """

    def __init__(self, kernel, spec, source=None, scope=None):
        object.__setattr__(self, "_kernel", kernel)
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_scope", scope)

    def __call__(self, *args, **kwargs):
        return self._kernel.request("call", obj=self, args=list(args), kwargs=kwargs)

    def __course_run__(self, module, name, *args, **kwargs):
        """``module.name(this object, *args, **kwargs)``, run in the student's kernel.

        For course code whose loop must run next to the student's code (a training run
        calls the student's functions thousands of times): course code checks
        ``getattr(obj, "__course_run__", None)`` and runs there, then judges the data that
        comes back. What it returns is the student kernel's word, like any answer.
        """
        return self._kernel.request("run", obj=self, module=module, name=name,
                                    args=list(args), kwargs=kwargs)

    def __getattr__(self, name):
        if name in ("__course_source__", "__course_scope__"):
            value = self._source if name == "__course_source__" else self._scope
            if value is None:
                raise AttributeError(name)
            return value
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._kernel.request("getattr", obj=self, name=name)

    def __setattr__(self, name, value):
        self._kernel.request("setattr", obj=self, name=name, value=value)

    def __getitem__(self, key):
        return self._kernel.request("getitem", obj=self, key=key)

    def __setitem__(self, key, value):
        self._kernel.request("setitem", obj=self, key=key, value=value)

    def __len__(self):
        return self._kernel.request("len", obj=self)

    def __iter__(self):
        return iter(self._kernel.request("list", obj=self))

    def __contains__(self, item):
        return item in self._kernel.request("list", obj=self)

    def __repr__(self):
        return f"<{self._spec.get('type')} from your notebook: {self._spec.get('repr')}>"


_KERNEL = None


def connect():
    """The trusted kernel's client of the student's kernel (made once, from the environment)."""
    global _KERNEL
    if _KERNEL is None:
        info = json.loads(os.environ[CONNECTION_ENV])
        _KERNEL = StudentKernel(info, timeout=float(os.environ.get(TIMEOUT_ENV, "60")))
    return _KERNEL


def bind(namespace, names, sources=None, scope=None, index=None, cell=""):
    """Give each of ``names`` its value from the student's notebook, in ``namespace``, and
    key the draws of test cell ``cell`` (:func:`helpers.grading.draws.install`).

    A name the notebook does not define is left unbound (the test then raises NameError).
    sources: {name: its definition's text in the submitted notebook}, what a proxy's
    ``__course_source__`` returns ("" where the notebook has no plain definition).
    scope: the notebook's top-level imports and functions, read from its text
    (:func:`helpers.grading.judge.static_scope`): a proxy's ``__course_scope__``.
    index: the submission's code by digest (:func:`helpers.grading.judge.code_index`). With
    it, a function or class is read as the text whose compiled code matches what the name is
    bound to in the student's kernel, and as "" (not found) if none does; so are the
    notebook's helper functions in ``scope``.
    """
    from . import draws
    draws.install(cell)
    kernel = connect()
    remote = {}
    for name in names:
        namespace.pop(name, None)
        try:
            value = kernel.request("get", name=name)
        except KeyError:
            continue
        namespace[name] = value
        if isinstance(value, Remote):
            remote[name] = value
    if index is not None and scope is not None:
        helpers = sorted(scope.get("functions", {}))
        digests = kernel.request("codes", names=sorted(set(remote) | set(helpers)))
        digests = digests if type(digests) is dict else {}
        scope = dict(scope, functions={
            name: text if name not in digests else matching_text(digests[name], index, text)
            for name, text in scope["functions"].items()})
        sources = {name: (sources or {}).get(name, "") if name not in digests
                   else matching_text(digests[name], index, (sources or {}).get(name, ""))
                   for name in remote}
    for name, value in remote.items():
        namespace[name] = Remote(kernel, value._spec, source=(sources or {}).get(name, ""),
                                 scope=scope)


def matching_text(digests, index, text):
    """The submitted text whose code matches ``digests`` (the student kernel's
    :func:`~helpers.grading.wire.code_digests` of one object); ``text`` when the object has
    no code to compare (a builtin, a partial), "" when no text matches.

    A class matches the last class whose functions, as written, are all among the kernel's
    (methods a decorator or a dataclass generates are allowed).
    """
    positions, texts = index
    if type(digests) is not dict or not digests:
        return text
    values = [str(v) for v in digests.values()]
    if "" in digests:
        where = positions.get(values[0])
    else:
        have = set(values)
        found = [pos for key, pos in positions.items() if key.startswith("class:")
                 and set(filter(None, key[6:].split(","))) <= have and key != wire.class_key([])]
        where = max(found) if found else None
    return texts[where] if where is not None else ""

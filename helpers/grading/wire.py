"""The wire between the trusted judge and a student's kernel: plain data, never pickle.

Values cross as JSON: None, bools, numbers, strings and bytes; NumPy number dtypes and
their scalar types (``np.float64``); NumPy
arrays and scalars as
``.npy`` bytes (read back with ``allow_pickle=False``); TensorFlow/Keras tensors as arrays
marked so that the other side gets a tensor again; lists, tuples and dicts of these (exact
types only); course models that :mod:`helpers.rebuildable` remembers, as the call that made
them (the student's kernel makes its own copy). Anything else stays in the process that made
it and crosses as a *handle*, an integer: the student's functions, classes, instances, caches
of other types. The judge can call a handle, read or set its attributes and items, or pass it back; it never unpickles,
imports or executes anything the student's kernel sends.

This one file runs on both sides. The judge imports it (:mod:`helpers.grading.bridge`); the
grader sends its *source* to the student's kernel, where :func:`serve` answers the judge's
requests (the student's code can replace it there: then it only spoils its own answers,
which the judge decodes like any other data). It imports only the standard library and NumPy.
"""
import base64
import io
import json

import numpy as np

#: The MIME type of the student kernel's answers (a display_data message).
MIME = "application/vnd.course.bridge+json"
#: Deepest nesting of lists, tuples and dicts that is decoded.
MAX_DEPTH = 32


class WireError(ValueError):
    """What the other side sent is not a well-formed value."""


def _is_tensor(v):
    mod = type(v).__module__ or ""
    return mod.split(".")[0] in ("tensorflow", "keras") and hasattr(v, "numpy") \
        and hasattr(v, "shape") and hasattr(v, "dtype")


def _array(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _number_type(cls):
    """True for a concrete NumPy number type (``np.float64``), not an abstract one."""
    try:
        return issubclass(cls, np.generic) and np.dtype(cls).type is cls and np.dtype(cls).kind in "biufc"
    except TypeError:
        return False


def encode(value, other, depth=0):
    """``value`` as JSON-able data; ``other(value)`` encodes what is not data (a handle)."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    t = type(value)
    if value is None or t in (bool, int, float, str):
        return value
    if t is bytes:
        return {"b": base64.b64encode(value).decode("ascii")}
    if t is np.ndarray and value.dtype != object:
        return {"nd": _array(value)}
    if isinstance(value, np.generic) and not isinstance(value, np.object_):
        return {"nd": _array(np.asarray(value)), "scalar": True}
    if t is np.dtype or isinstance(value, np.dtype):
        return {"dtype": value.str}
    if t is type and _number_type(value):
        return {"dtype": np.dtype(value).str, "type": True}     # np.float64 itself, as cs231n passes it
    if _is_tensor(value):
        arr = np.asarray(value.numpy())
        if arr.dtype != object:
            return {"nd": _array(arr), "tensor": True}
    if t is list:
        return {"l": [encode(v, other, depth + 1) for v in value]}
    if t is tuple:
        return {"t": [encode(v, other, depth + 1) for v in value]}
    if t is dict:
        return {"d": [[encode(k, other, depth + 1), encode(v, other, depth + 1)]
                      for k, v in value.items()]}
    return other(value)


def decode(data, other, depth=0):
    """The value that :func:`encode` wrote; ``other(dict)`` decodes handles."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is not dict:
        raise WireError(f"unexpected {type(data).__name__} on the wire")
    if "nd" in data:
        raw = base64.b64decode(data["nd"], validate=True)
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
        if data.get("scalar"):
            return arr[()]
        if data.get("tensor"):
            import tensorflow as tf
            return tf.constant(arr)
        return arr
    if "b" in data:
        return base64.b64decode(data["b"], validate=True)
    if "dtype" in data:
        dt = np.dtype(str(data["dtype"])[:16])
        if dt.kind not in "biufc":
            raise WireError(f"dtype {dt} is not a number type")
        return dt.type if data.get("type") else dt
    if "l" in data:
        return [decode(v, other, depth + 1) for v in _items(data["l"])]
    if "t" in data:
        return tuple(decode(v, other, depth + 1) for v in _items(data["t"]))
    if "d" in data:
        out = {}
        for pair in _items(data["d"]):
            if type(pair) is not list or len(pair) != 2:
                raise WireError("a dict entry is not a pair")
            out[decode(pair[0], other, depth + 1)] = decode(pair[1], other, depth + 1)
        return out
    return other(data)


def _items(v):
    if type(v) is not list:
        raise WireError("a container's items are not a list")
    return v


# --------------------------------------------------------------------------- student side

_HANDLES = {}      # id -> object made in this kernel


def _handle(value):
    hid = id(value)
    _HANDLES[hid] = value
    return {"h": hid, "type": f"{type(value).__module__}.{type(value).__qualname__}"[:200],
            "repr": _short_repr(value)}


def _short_repr(value):
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ is the student's
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."


def _local(spec):
    """Student side: the object a handle names."""
    if "h" in spec:
        try:
            return _HANDLES[spec["h"]]
        except (KeyError, TypeError):
            raise WireError("unknown handle") from None
    if "recipe" in spec:
        return _rebuild(spec)
    raise WireError("unknown value on the wire")


def _rebuild(spec):
    """Student side: a course object (a model) made here by the call the judge names
    (:mod:`helpers.rebuildable`); the judge keeps and judges with its own copy."""
    import importlib
    module, name = (str(v) for v in spec["recipe"])
    if not module.startswith("helpers.") or module.startswith("helpers.grading"):
        raise WireError(f"{module}.{name} is not a course constructor")
    fn = getattr(importlib.import_module(module), name)
    return fn(*decode(spec["args"], _local), **decode(spec["kwargs"], _local))


def _namespace():
    try:
        return get_ipython().user_ns  # noqa: F821 - defined in an IPython kernel
    except NameError:
        import __main__
        return vars(__main__)


def code_digest(code):
    """A digest of a code object's bytecode and names, its nested code included.

    Both sides compute it: the student's kernel for the object a name is bound to, the judge
    for each definition in the notebook's text (compiled, never run), so the judge reads the
    text of the code that really runs (see :func:`helpers.grading.judge.code_index`).
    """
    import hashlib
    digest, todo = hashlib.sha256(), [code]
    while todo:
        c = todo.pop(0)
        digest.update(c.co_code)
        digest.update(repr(c.co_names).encode())
        todo += [k for k in c.co_consts if isinstance(k, type(code))]
    return digest.hexdigest()[:32]


def class_key(digests):
    """The judge's key of a class: its own functions' digests, sorted."""
    return "class:" + ",".join(sorted(digests))


def code_digests(obj):
    """{"": digest} of a function's code, {method: digest} of a class's own functions, or
    {} for anything else."""
    if isinstance(obj, type):
        out = {}
        for key, value in vars(obj).items():
            value = getattr(value, "__func__", value)
            parts = [value.fget, value.fset, value.fdel] if isinstance(value, property) else [value]
            for i, part in enumerate(parts):
                code = getattr(part, "__code__", None)
                if isinstance(code, type(code_digest.__code__)):
                    out[f"{key}.{i}"] = code_digest(code)
        return out
    code = getattr(getattr(obj, "__func__", obj), "__code__", None)
    return {"": code_digest(code)} if isinstance(code, type(code_digest.__code__)) else {}


def _perform(req):
    op = req["op"]
    if op == "get":
        return _namespace()[req["name"]]
    if op == "codes":
        ns = _namespace()
        return {name: code_digests(ns[name]) for name in req["names"] if name in ns}
    if op == "drop":
        for hid in req["ids"]:
            _HANDLES.pop(hid, None)
        return None
    target = _local(req["obj"])
    if op == "run":
        import importlib
        fn = getattr(importlib.import_module(req["module"]), req["name"])
        return fn(target, *decode(req["args"], _local), **decode(req["kwargs"], _local))
    if op == "call":
        return target(*decode(req["args"], _local), **decode(req["kwargs"], _local))
    if op == "getattr":
        return getattr(target, req["name"])
    if op == "setattr":
        setattr(target, req["name"], decode(req["value"], _local))
        return None
    if op == "getitem":
        return target[decode(req["key"], _local)]
    if op == "setitem":
        target[decode(req["key"], _local)] = decode(req["value"], _local)
        return None
    if op == "len":
        return len(target)
    if op == "list":
        return list(target)
    raise WireError(f"unknown operation {op!r}")


def _by_reference(value):
    """getattr/getitem answers: containers stay by reference (``model.params[k] = v`` works)."""
    return type(value) in (dict, list)


def _request_text():
    """The request: the ``course`` metadata of the execute_request being run (not its code:
    IPython would parse megabytes of arrays as source)."""
    kernel = get_ipython().kernel  # noqa: F821 - defined in an IPython kernel
    try:
        parent = kernel.get_parent("shell")
    except TypeError:
        parent = kernel.get_parent()
    return parent["metadata"]["course"]


def serve():
    """Student side: answer the judge's request, as a display_data message."""
    import traceback
    try:
        req = json.loads(_request_text())
        value = _perform(req)
        if req["op"] in ("getattr", "getitem") and _by_reference(value):
            answer = {"ok": _handle(value)}
        else:
            answer = {"ok": encode(value, _handle)}
    except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt (a timeout) too
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        answer = {"error": [type(exc).__name__, str(exc)[:4000], "".join(lines)[-8000:]]}
    from IPython.display import publish_display_data
    publish_display_data({MIME: json.dumps(answer)})


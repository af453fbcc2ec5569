"""A stand-in for the judge's proxy of an object that lives in the student's kernel.

``helpers/grading/bridge.Remote`` in miniature, for checker tests that need no kernel: calls
come back as arrays (tuples and lists item by item, Keras models as new stand-ins), no
``isinstance`` sees the object, and course functions run next to it through
``__course_run__`` (other stand-ins among its arguments are handles: the
objects they stand for). ``forged={function name: answer}`` makes ``__course_run__`` answer those
functions as a hostile kernel would, without running them.
"""
import importlib

import keras
import numpy as np


class InKernel:
    def __init__(self, obj, forged=None):
        self._obj, self._forged = obj, dict(forged or {})

    @staticmethod
    def _back(value):
        if isinstance(value, (tuple, list)):
            return type(value)(InKernel._back(v) for v in value)
        if isinstance(value, keras.Model):
            return InKernel(value)
        return np.asarray(value) if hasattr(value, "shape") else value

    def __call__(self, *args, **kwargs):
        return self._back(self._obj(*args, **kwargs))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self._obj, name)
        return InKernel(value) if callable(value) else self._back(value)

    @staticmethod
    def _there(value):
        """An argument as the kernel gets it: a stand-in (the wire's handle) is its object."""
        return value._obj if isinstance(value, InKernel) else value

    def __course_run__(self, module, name, *args, **kwargs):
        if name in self._forged:
            return self._forged[name]
        args, kwargs = [self._there(a) for a in args], {k: self._there(v) for k, v in kwargs.items()}
        return self._back(getattr(importlib.import_module(module), name)(self._obj, *args, **kwargs))

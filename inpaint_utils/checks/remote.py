"""Grading a student's function from another process: the check runs in the grader, the function in the student's
kernel, and only arguments and results cross between them.

``python -m inpaint_utils.exercises grade`` runs each submitted notebook with papermill. A check that ran inside the
student's kernel could be switched off by the student's own code (``checks.check_masked_l2 = lambda *a, **k:
print("CHECK masked_l2 PASS 1.00")``, or a patched ``torch.allclose``), so the grade is not computed there: after each
handed-out grading cell the grader puts a cell that calls :func:`serve`. It connects to the grader's socket (the
``INPAINT_GRADER_SOCKET`` variable) and answers calls until the grader has its verdict. In the grader,
:func:`run_check` runs the library's check, imported by the grader and never touched by the student's code, on a
:class:`RemoteFunction`: calling it sends the arguments to the kernel, which calls the student's function and sends
back the result (and the arguments, when the function changed them in place, and the generators' states), so that
every test of the check sees what it would see in the kernel. Gradients cross too: the result of a call whose
inputs require gradients is the output of an autograd function whose backward asks the kernel for
``torch.autograd.grad`` of the student's outputs.

What crosses is data only: nested lists, tuples and dicts of numbers, strings and tensors, written with
``torch.save`` and read with ``torch.load(weights_only=True)`` (no pickled code); anything else arrives as an
opaque stand-in that carries its type's name. Grades of honest submissions are those of the check run in the kernel:
the same seeded inputs, the same functions, the same numbers. This keeps a student's code away from the check; it
is not a sandbox (see the README's section for instructors).
"""
from __future__ import annotations

import builtins
import io
import os
import socket
import struct
import warnings
from typing import Any, Callable, Iterable

import numpy as np
import torch

__all__ = ["SOCKET_ENV", "serve", "serve_on", "grade_connection", "run_check", "RemoteFunction", "RemoteError", "pack",
           "unpack"]

#: the grader's socket, given to the kernel in its environment
SOCKET_ENV = "INPAINT_GRADER_SOCKET"
#: the largest message either side accepts
MAX_MESSAGE = 512 * 2 ** 20


class RemoteError(ConnectionError):
    """The connection to the student's kernel broke or carried something unreadable: the check's verdict does not
    count."""


# --------------------------------------------------------------------------------------------------
# Messages: data only
# --------------------------------------------------------------------------------------------------
def pack(obj: Any) -> bytes:
    """``obj`` (lists, tuples, dicts, numbers, strings, ``None`` and tensors) as bytes."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def unpack(data: bytes) -> Any:
    """The object :func:`pack` wrote, read without unpickling code (``torch.load(weights_only=True)``)."""
    try:
        with warnings.catch_warnings():          # e.g. "Detected pickle protocol 4": what matters is whether it loads
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data), weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever the bytes were, they are not a message
        raise RemoteError(f"unreadable message from the other side ({type(err).__name__}: {err})") from None


def _send(sock: socket.socket, obj: Any) -> None:
    data = pack(obj)
    sock.sendall(struct.pack("!Q", len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 2 ** 20))
        if not chunk:
            raise RemoteError("the connection closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv(sock: socket.socket) -> Any:
    (n,) = struct.unpack("!Q", _recv_exact(sock, 8))
    if n > MAX_MESSAGE:
        raise RemoteError(f"a message of {n} bytes (the limit is {MAX_MESSAGE})")
    return unpack(_recv_exact(sock, n))


class _Opaque:
    """What the other side sent that is not data (a module, a function, an object of the student's class): its
    type's name and repr, so a check can say what it got."""

    def __init__(self, type_name: str, text: str):
        self._type_name, self._text = type_name, text

    def __repr__(self) -> str:
        return self._text


def _opaque_class(type_name: str) -> type:
    return type(type_name if type_name.isidentifier() else "object", (_Opaque,), {})


def _encode(obj: Any, tensors: list[torch.Tensor], generators: list[torch.Generator]) -> Any:
    """``obj`` with its tensors moved to ``tensors`` (and its generators to ``generators``), as placeholders."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, torch.Tensor):
        tensors.append(obj)
        return {"__tensor__": len(tensors) - 1}
    if isinstance(obj, torch.Generator):
        generators.append(obj)
        return {"__generator__": len(generators) - 1, "state": obj.get_state()}
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        items = [_encode(x, tensors, generators) for x in obj]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        return {"__dict__": [(_encode(k, tensors, generators), _encode(v, tensors, generators)) for k, v in obj.items()]}
    return {"__object__": type(obj).__name__, "repr": repr(obj)[:300]}


def _decode(obj: Any, tensors: list[Any], generators: list[torch.Generator] | None = None) -> Any:
    if isinstance(obj, list):
        return [_decode(x, tensors, generators) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__generator__" in obj:
        generator = torch.Generator()
        generator.set_state(obj["state"])
        if generators is not None:
            generators.append(generator)
        return generator
    if "__ndarray__" in obj:
        return obj["__ndarray__"].numpy()
    if "__tuple__" in obj:
        return tuple(_decode(x, tensors, generators) for x in obj["__tuple__"])
    if "__dict__" in obj:
        return {_decode(k, tensors, generators): _decode(v, tensors, generators) for k, v in obj["__dict__"]}
    if "__object__" in obj:
        return _opaque_class(str(obj["__object__"]))(str(obj["__object__"]), str(obj.get("repr", "")))
    raise RemoteError(f"unknown placeholder {sorted(obj)}")


def _error_class(name: str) -> type[BaseException]:
    """The built-in exception of that name (``NotImplementedError``, ``ValueError`` ...), else a new one with it."""
    found = getattr(builtins, name, None)
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return type(name if name.isidentifier() else "StudentError", (Exception,), {})


# --------------------------------------------------------------------------------------------------
# In the student's kernel
# --------------------------------------------------------------------------------------------------
def serve(check: str, function: Callable[[], Any], address: str | None = None) -> None:
    """Answer the grader's calls of the student's function for ``check`` (``function()`` returns it, so a name the
    student never defined is an error of the call, not of the cell); return when the grader has its verdict.
    Without the grader's socket (``INPAINT_GRADER_SOCKET`` unset: the notebook runs outside the grader) do nothing."""
    address = address or os.environ.get(SOCKET_ENV)
    if not address:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(address)
        serve_on(sock, check, function)


def serve_on(sock: socket.socket, check: str, function: Callable[[], Any]) -> None:
    """:func:`serve` on a connected socket."""
    calls: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
    try:
        fn = function()
        hello = {"op": "hello", "check": check, "function": getattr(fn, "__name__", None) or type(fn).__name__,
                 "callable": callable(fn), "type": type(fn).__name__, "repr": repr(fn)[:300]}
    except Exception as err:  # noqa: BLE001 - e.g. a NameError: the function was never defined
        hello = {"op": "hello", "check": check, "function": "student_function", "callable": False,
                 "type": type(err).__name__, "repr": str(err)[:300]}
    _send(sock, hello)
    while True:
        try:
            request = _recv(sock)
        except (RemoteError, OSError, struct.error):
            return
        if not isinstance(request, dict) or request.get("op") == "done":
            print(f"[grader] {request.get('line', '') if isinstance(request, dict) else ''}", flush=True)
            return
        try:
            if request.get("op") == "call":
                reply = _serve_call(function, request, calls)
            elif request.get("op") == "backward":
                reply = _serve_backward(request, calls)
            else:
                reply = {"ok": False, "error": "RuntimeError", "message": f"unknown request {request.get('op')!r}"}
        except Exception as err:  # noqa: BLE001 - the student's code raised: the check reports it
            reply = {"ok": False, "error": type(err).__name__, "message": str(err)[:2000]}
        _send(sock, reply)


def _serve_call(function: Callable[[], Any], request: dict, calls: dict) -> dict:
    inputs = [t.requires_grad_(bool(g)) if t.is_floating_point() or t.is_complex() else t
              for t, g in zip(request["tensors"], request["requires_grad"])]
    generators: list[torch.Generator] = []
    args = _decode(request["args"], inputs, generators)
    kwargs = _decode(request["kwargs"], inputs, generators)
    before = [t.detach().clone() for t in inputs]
    fn = function()
    out = fn(*args, **kwargs)
    tensors: list[torch.Tensor] = []
    result = _encode(out, tensors, [])
    calls[request["id"]] = ([t for t in inputs if t.requires_grad], [t for t in tensors if t.requires_grad])
    changed = {i: t.detach().clone() for i, (t, b) in enumerate(zip(inputs, before))
               if t.shape != b.shape or t.dtype != b.dtype or not torch.equal(t.detach(), b)}
    return {"ok": True, "result": result, "tensors": [t.detach() for t in tensors],
            "requires_grad": [bool(t.requires_grad) for t in tensors], "changed": {"__dict__": list(changed.items())},
            "generators": [g.get_state() for g in generators]}


def _serve_backward(request: dict, calls: dict) -> dict:
    inputs, outputs = calls[request["id"]]
    pairs = [(o, g) for o, g in zip(outputs, request["grads"]) if g is not None]
    if not pairs or not inputs:
        return {"ok": True, "grads": [None] * len(inputs)}
    grads = torch.autograd.grad([o for o, _ in pairs], inputs, [g for _, g in pairs], allow_unused=True)
    return {"ok": True, "grads": [None if g is None else g.detach() for g in grads]}


# --------------------------------------------------------------------------------------------------
# In the grader
# --------------------------------------------------------------------------------------------------
class _RemoteCall(torch.autograd.Function):
    """One call whose inputs require gradients: forward asks the kernel for the outputs, backward for their
    gradients with respect to the inputs."""

    @staticmethod
    def forward(ctx, remote: "RemoteFunction", call: dict, *inputs: torch.Tensor):  # type: ignore[override]
        reply = remote._request(call)
        ctx.remote, ctx.call_id = remote, call["id"]
        ctx.graded = [i for i, t in enumerate(inputs) if t.requires_grad]
        ctx.n_inputs = len(inputs)
        ctx.set_materialize_grads(False)
        outputs = tuple(reply["tensors"])
        ctx.differentiable = [i for i, g in enumerate(reply["requires_grad"]) if g]
        ctx.mark_non_differentiable(*(t for i, t in enumerate(outputs) if i not in ctx.differentiable))
        remote._last_reply = reply
        return outputs

    @staticmethod
    def backward(ctx, *grads: torch.Tensor | None):  # type: ignore[override]
        wanted = [grads[i] for i in ctx.differentiable]
        reply = ctx.remote._request({"op": "backward", "id": ctx.call_id, "grads": wanted})
        out: list[torch.Tensor | None] = [None] * ctx.n_inputs
        for i, g in zip(ctx.graded, reply["grads"]):
            out[i] = g
        return (None, None, *out)


class RemoteFunction:
    """Stands for the student's function in the grader: a call runs it in the kernel at the other end of ``sock``.
    The student's exceptions are raised again here (the same built-in type and message)."""

    def __init__(self, sock: socket.socket, name: str = "student_function"):
        self._sock, self.__name__, self._next = sock, name, 0
        self._last_reply: dict = {}

    def _request(self, message: dict) -> dict:
        try:
            _send(self._sock, message)
            reply = _recv(self._sock)
        except (OSError, struct.error) as err:
            raise RemoteError(f"the student's kernel stopped answering ({err})") from None
        if not isinstance(reply, dict):
            raise RemoteError("a reply that is not a message")
        if not reply.get("ok"):
            raise _error_class(str(reply.get("error", "Exception")))(str(reply.get("message", "")))
        return reply

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tensors: list[torch.Tensor] = []
        generators: list[torch.Generator] = []
        call = {"op": "call", "id": self._next, "args": _encode(list(args), tensors, generators),
                "kwargs": _encode(kwargs, tensors, generators)}
        self._next += 1
        graded = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
        call["tensors"] = [t.detach() for t in tensors]
        call["requires_grad"] = [bool(graded and t.requires_grad) for t in tensors]
        if graded:
            outputs = _RemoteCall.apply(self, call, *tensors)
            reply = self._last_reply
        else:
            reply = self._request(call)
            outputs = tuple(reply["tensors"])
        with torch.no_grad():                        # what the function did to its arguments, done here too
            for i, value in _decode(reply["changed"], []).items():
                if tensors[i].shape == value.shape:
                    tensors[i].copy_(value)
        for generator, state in zip(generators, reply["generators"]):
            generator.set_state(state)
        return _decode(reply["result"], list(outputs))


def grade_connection(sock: socket.socket, allowed: Iterable[str]) -> tuple[str, Any, str] | None:
    """The grader's side of one serving cell: read its greeting, run the check it names (one of ``allowed``, looked
    up in :mod:`inpaint_utils.checks` as the grader imported it) and return ``(name, CheckResult, the printed
    report)``; ``None`` when the name is not one to grade or the kernel stopped answering before the verdict."""
    import contextlib
    import importlib

    try:
        hello = _recv(sock)
    except (RemoteError, OSError, struct.error):
        return None
    package = importlib.import_module(__package__)
    name = hello.get("check") if isinstance(hello, dict) else None
    if not isinstance(name, str) or name not in set(allowed) or f"check_{name}" not in package.__all__:
        try:
            _send(sock, {"op": "done", "line": f"check {str(name)[:80]!r} is not graded in this notebook"})
        except OSError:
            pass
        return None
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            if hello.get("callable"):
                result = run_check(getattr(package, f"check_{name}"), sock, str(hello.get("function")))
            else:  # not a function (or not defined): the check says so, as it would in the kernel
                stand_in = _opaque_class(str(hello.get("type")))(str(hello.get("type")), str(hello.get("repr")))
                result = getattr(package, f"check_{name}")(stand_in, strict=False)
                _send(sock, {"op": "done", "line": result.line()})
    except (RemoteError, OSError):
        return None
    return name, result, buffer.getvalue()


def run_check(check: Callable[..., Any], sock: socket.socket, name: str = "student_function") -> Any:
    """Run ``check`` (one of :mod:`inpaint_utils.checks`, never strict) on the student's function served at the
    other end of ``sock``; tell the kernel the verdict and return the :class:`CheckResult`. Raises
    :class:`RemoteError` when the kernel stopped answering during the check (its verdict would not be the
    function's)."""
    remote = RemoteFunction(sock, name)
    broken: list[BaseException] = []

    def guarded(*args: Any, **kwargs: Any) -> Any:
        if broken:
            raise broken[0]
        try:
            return remote(*args, **kwargs)
        except RemoteError as err:
            broken.append(err)
            raise

    guarded.__name__ = name
    result = check(guarded, strict=False)
    if broken:
        raise broken[0]
    try:
        _send(sock, {"op": "done", "line": result.line()})
    except OSError:
        pass
    return result

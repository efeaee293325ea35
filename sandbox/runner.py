"""The sandbox worker: stdlib only, run by the local backend (inside bwrap) and inside the Docker image.

A worker is a warm interpreter that compiles each program once and forks one child per execution. Every child
is confined before it touches the program: its own session, rlimits, a private temp dir, a scrubbed environment,
stdin from /dev/null, output into a capped file, an unprivileged uid per slot (when the worker is root), and the
worker-wide seccomp filter (no inet sockets) and network namespace. The child reports a framed JSON outcome on
fd 3; the worker kills the whole process group and sweeps the slot uid so that no descendant survives.

Protocol on stdin/stdout: 4-byte big-endian length + UTF-8 JSON, both ways. Requests: ``{"op": "batch",
"programs": {hash: source}, "jobs": [...]}``, ``{"op": "ping"}``, ``{"op": "exit"}``. The worker greets with
``{"op": "hello", ...}`` and answers a batch with ``{"op": "results", "results": [...]}`` in job order.

This file must stay importable with ``python -S`` and no third-party packages: it is copied into containers.
"""

from __future__ import annotations

import ast
import builtins
import ctypes
import gc
import json
import math
import os
import re
import reprlib
import resource
import select
import signal
import stat
import struct
import sys
import time
import types

try:  # the builtin SHA-256 (same digests as hashlib's): OpenSSL mapped into the worker makes every fork dearer
    from _sha2 import sha256 as _sha256  # type: ignore[import-not-found]  # 3.12+
except ImportError:
    try:
        from _sha256 import sha256 as _sha256  # type: ignore[import-not-found, no-redef]  # 3.11
    except ImportError:
        from hashlib import sha256 as _sha256  # type: ignore[assignment]

PROGRAM_MODULE = "__sinq__"
ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{6,}")
MAX_DEPTH = 2000
PREVIEW_CHARS = 2000
MESSAGE_CHARS = 2000
RESULT_FD = 3
LOADED = b"L"
CLEAN_TAIL = b',"threads":1}'
"""Written on the result fd once the module loaded and the entry point resolved: a child that times out, hits a
limit or dies before it is an ``invalid`` program (``fails_to_load``), not an outcome of the call."""
STARVED_WALL_FACTOR = 3.0
PRELOAD = (
    # What most programs of code datasets import (HumanEval: typing in nearly every problem). Every module the
    # worker holds makes each fork dearer (page tables, copy-on-write), so the list stays short; anything else a
    # program imports, it imports in its own child.
    "math", "collections", "itertools", "functools", "heapq", "bisect", "re", "string", "operator", "typing",
)


# --------------------------------------------------------------------------------------------- canonical encoding
class EncodeLimit(Exception):
    """The value is too large or too deep to encode within the configured budget."""


def normalize_text(text: str) -> str:
    """Remove memory addresses so that reprs and messages compare across processes."""
    return ADDRESS_RE.sub("0x?", text)


def qualname(obj_type: type) -> str:
    module = getattr(obj_type, "__module__", None) or "?"
    name = getattr(obj_type, "__qualname__", None) or getattr(obj_type, "__name__", "?")
    return name if module == "builtins" else f"{module}.{name}"


class Encoder:
    """Canonical, type-strict byte encoding of a value; ``loose`` mode follows Python ``==`` where it can.

    Strict: 1, 1.0 and True differ; NaN equals NaN; -0.0 and 0.0 differ; dict and set order is ignored, list and
    tuple order is kept; subclasses of builtins carry their type; other objects are encoded by their state
    (``__dict__``/``__slots__`` or ``__reduce_ex__``), never by identity. Loose: bool/int/integral float collapse
    to one number, -0.0 == 0.0, set == frozenset, bytes == bytearray, builtin subclasses compare as their base.
    NaN still equals NaN in loose mode (a function returning NaN must agree with itself).
    """

    def __init__(self, loose: bool = False, max_nodes: int = 2_000_000) -> None:
        self.loose = loose
        self.max_nodes = max_nodes
        self.nodes = 0
        self.path: list[int] = []

    def encode(self, value: object) -> bytes:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise EncodeLimit("result has too many nodes")
        if len(self.path) > MAX_DEPTH:
            raise EncodeLimit("result is nested too deeply")
        t = type(value)
        if value is None:
            return b"N"
        if t is bool:
            return self._int(int(value)) if self.loose else (b"T" if value else b"F")
        if t is int:
            return self._int(value)
        if t is float:
            return self._float(value)
        if t is str:
            return self._blob(b"S", value.encode("utf-8", "surrogatepass"))
        if t is bytes or (self.loose and t is bytearray):
            return self._blob(b"B", bytes(value))
        if t is bytearray:
            return self._blob(b"A", bytes(value))
        if t is complex:
            if self.loose and value.imag == 0:
                return self._float(value.real)
            return b"C" + self._float(value.real) + self._float(value.imag)
        if t in (list, tuple, dict, set, frozenset):
            return self._container(value, t)
        return self._other(value, t)

    def _int(self, value: int) -> bytes:
        return self._blob(b"I", format(value, "x").encode())

    def _float(self, value: float) -> bytes:
        if self.loose and math.isfinite(value) and value == int(value):
            return self._int(int(value))
        text = "nan" if math.isnan(value) else repr(value)
        return self._blob(b"D", text.encode())

    @staticmethod
    def _blob(tag: bytes, data: bytes) -> bytes:
        return tag + str(len(data)).encode() + b":" + data

    def _seq(self, tag: bytes, items: list[bytes]) -> bytes:
        return tag + str(len(items)).encode() + b"[" + b"".join(items) + b"]"

    def _container(self, value: object, t: type) -> bytes:
        ident = id(value)
        if ident in self.path:
            return self._blob(b"R", str(len(self.path) - self.path.index(ident)).encode())
        self.path.append(ident)
        try:
            if t is list:
                return self._seq(b"L", [self.encode(v) for v in value])  # type: ignore[attr-defined]
            if t is tuple:
                return self._seq(b"U", [self.encode(v) for v in value])  # type: ignore[attr-defined]
            if t is dict:
                pairs = sorted(self.encode(k) + self.encode(v) for k, v in list(value.items()))  # type: ignore[attr-defined]
                return self._seq(b"M", pairs)
            tag = b"E" if (t is set or self.loose) else b"Z"
            return self._seq(tag, sorted(self.encode(v) for v in list(value)))  # type: ignore[call-overload]
        finally:
            self.path.pop()

    def _other(self, value: object, t: type) -> bytes:
        for base in (bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset):
            if isinstance(value, base):
                plain = self.encode(base(value))  # type: ignore[call-arg]
                if self.loose:
                    return plain
                return self._seq(b"K", [self._name(t), plain, self._state(value, t, builtin_subclass=True)])
        if isinstance(value, BaseException):
            return self._seq(b"X", [self._name(t), self._blob(b"S", _message(value).encode("utf-8", "surrogatepass"))])
        if isinstance(value, type):
            return self._seq(b"Y", [self._name(value)])
        if isinstance(value, _OPAQUE):
            name = getattr(value, "__qualname__", None) or getattr(value, "__name__", "?")
            return self._seq(b"Y", [self._name(t), self._blob(b"S", str(name).encode("utf-8", "surrogatepass"))])
        return self._seq(b"O", [self._name(t), self._state(value, t, builtin_subclass=False)])

    def _name(self, t: type) -> bytes:
        return self._blob(b"S", qualname(t).encode("utf-8", "surrogatepass"))

    def _state(self, value: object, t: type, builtin_subclass: bool) -> bytes:
        ident = id(value)
        if ident in self.path:
            return self._blob(b"R", str(len(self.path) - self.path.index(ident)).encode())
        self.path.append(ident)
        try:
            state: dict[str, object] = {}
            attrs = getattr(value, "__dict__", None)
            if isinstance(attrs, dict):
                state.update(attrs)
            for klass in t.__mro__:
                slots = klass.__dict__.get("__slots__", ())
                for slot in (slots,) if isinstance(slots, str) else slots:
                    if slot not in ("__dict__", "__weakref__") and hasattr(value, slot):
                        state[f"slot:{slot}"] = getattr(value, slot)
            if state or builtin_subclass:
                return self.encode(state)
            try:
                reduced = value.__reduce_ex__(4)
            except Exception:
                reduced = None
            if isinstance(reduced, tuple) and len(reduced) >= 2:
                parts = [self.encode(reduced[1])]
                parts += [self.encode(reduced[2] if len(reduced) > 2 else None)]
                if len(reduced) > 3 and reduced[3] is not None:
                    parts.append(self.encode(list(reduced[3])))
                if len(reduced) > 4 and reduced[4] is not None:
                    parts.append(self.encode(dict(reduced[4])))
                return self._seq(b"P", parts)
            return self._blob(b"S", normalize_text(_safe_repr(value)).encode("utf-8", "surrogatepass"))
        finally:
            self.path.pop()


_OPAQUE = (
    types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType, types.GeneratorType,
    types.CoroutineType, types.AsyncGeneratorType, types.MethodWrapperType, types.WrapperDescriptorType,
    types.MethodDescriptorType, types.ClassMethodDescriptorType, types.LambdaType,
)
_PREVIEW = reprlib.Repr()
_PREVIEW.maxlevel = 6
_PREVIEW.maxstring = 400
_PREVIEW.maxother = 400
_PREVIEW.maxlong = 400
for _name in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset", "maxdeque", "maxarray"):
    setattr(_PREVIEW, _name, 50)


def _safe_repr(value: object) -> str:
    try:
        return _PREVIEW.repr(value)[:PREVIEW_CHARS]
    except BaseException as exc:
        return f"<unrepresentable {qualname(type(value))}: {type(exc).__name__}>"


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:
        text = "<unprintable>"
    return normalize_text(text)


def digest(data: bytes) -> str:
    return _sha256(data).hexdigest()


_BUILTIN_NAMES = {t: t.__name__ for t in (int, str, bool, float, list, dict, tuple, set, type(None), bytes)}


def scalar_encoding(value: object, loose: bool) -> bytes | None:
    """``Encoder(loose).encode(value)`` for None, bool, int, float and str, byte for byte, without building an
    Encoder: most calls return one of these, and in a fresh fork every object touched is a copy-on-write fault.
    None for anything else (the caller falls back to the Encoder)."""
    t = type(value)
    if value is None:
        return b"N"
    if t is bool:
        if not loose:
            return b"T" if value else b"F"
        value, t = int(value), int  # type: ignore[call-overload]
    if t is float and loose and math.isfinite(value) and value == int(value):  # type: ignore[arg-type]
        value, t = int(value), int  # type: ignore[call-overload]
    if t is int:
        data = b"%x" % value
        return b"I%d:%b" % (len(data), data)
    if t is float:
        data = b"nan" if math.isnan(value) else repr(value).encode()  # type: ignore[arg-type]
        return b"D%d:%b" % (len(data), data)
    if t is str:
        data = value.encode("utf-8", "surrogatepass")  # type: ignore[attr-defined]
        return b"S%d:%b" % (len(data), data)
    return None


def describe_value(value: object, max_nodes: int, modes: str = "strict") -> dict:
    """The ``returned`` outcome fields of a value: its digest in each requested mode plus a bounded preview."""
    t = type(value)
    result = {"kind": "returned", "value": preview(value), "type": _BUILTIN_NAMES.get(t) or qualname(t)}
    if "strict" in modes:
        encoded = scalar_encoding(value, False)
        result["digest"] = digest(encoded if encoded is not None
                                  else Encoder(loose=False, max_nodes=max_nodes).encode(value))
    if "loose" in modes:
        encoded = scalar_encoding(value, True)
        result["loose_digest"] = digest(encoded if encoded is not None
                                        else Encoder(loose=True, max_nodes=max_nodes).encode(value))
    return result


_PREVIEW_INT = 10**300  # not folded by the compiler (too big): computed once here, not twice per child


def preview(value: object) -> str:
    """A bounded, address-free repr for people (never used for comparison)."""
    t = type(value)
    if (t is int and -_PREVIEW_INT < value < _PREVIEW_INT) or t in (bool, float, complex) or value is None:  # type: ignore[operator]
        return repr(value)
    if t is str and len(value) <= PREVIEW_CHARS:  # type: ignore[arg-type]
        return repr(value)
    return normalize_text(_safe_repr(value))


def describe_exception(exc: BaseException) -> dict:
    message = _message(exc)
    type_name = qualname(type(exc))
    key = digest(f"raised\0{type_name}\0{message}".encode("utf-8", "surrogatepass"))
    return {
        "kind": "raised",
        "type": type_name,
        "message": message[:MESSAGE_CHARS],
        "digest": key,
        "loose_digest": key,
    }


# --------------------------------------------------------------------------------------------- isolation helpers
_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_MODE_FILTER = 2
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
WORKDIR = "/tmp/work"
_ARCH = {"x86_64": (0xC000003E, 41, 425), "aarch64": (0xC00000B7, 198, 425)}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def install_seccomp() -> str:
    """Deny every socket family but AF_UNIX, io_uring and foreign syscall ABIs, for this process and its children."""
    arch = _ARCH.get(os.uname().machine)
    if arch is None:
        return "unavailable: unknown architecture"
    audit_arch, nr_socket, nr_io_uring = arch
    allow, kill = 0x7FFF0000, 0x80000000
    eacces, enosys = 0x00050000 | 13, 0x00050000 | 38
    program = [
        (0x20, 0, 0, 4), (0x15, 1, 0, audit_arch), (0x06, 0, 0, kill),
        (0x20, 0, 0, 0), (0x35, 0, 1, 0x40000000), (0x06, 0, 0, eacces),
        (0x15, 0, 1, nr_io_uring), (0x06, 0, 0, enosys),
        (0x15, 0, 3, nr_socket), (0x20, 0, 0, 16), (0x15, 1, 0, 1), (0x06, 0, 0, eacces),
        (0x06, 0, 0, allow),
    ]
    filters = (_SockFilter * len(program))(*[_SockFilter(*ins) for ins in program])
    prog = _SockFprog(len(program), filters)
    if _LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"unavailable: no_new_privs errno {ctypes.get_errno()}"
    if _LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return f"unavailable: seccomp errno {ctypes.get_errno()}"
    return "on"


def isolate_network() -> str:
    """Enter a fresh network namespace when we may (root); bwrap or Docker usually did it already."""
    if os.getuid() != 0:
        return "inherited"
    if _LIBC.unshare(CLONE_NEWNET) != 0:
        return f"inherited (unshare errno {ctypes.get_errno()})"
    return "namespace"


# --------------------------------------------------------------------------------------------- the child
def _unserialisable(obj: object) -> object:
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_FRAME_ENCODER = (
    _C_ENCODER(None, _unserialisable, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
    if _C_ENCODER is not None else None
)
"""json.dumps(ensure_ascii=True, allow_nan=True) without its Python layers, built once before any fork: a child
that reports through json.dumps touches ~80 pages of the worker's (copy-on-write faults) on the way."""


def _json_bytes(obj: dict) -> bytes:
    if _FRAME_ENCODER is not None:
        return "".join(_FRAME_ENCODER(obj, 0)).encode()
    return json.dumps(obj, ensure_ascii=True, allow_nan=True, separators=(",", ":")).encode()


_SCAN = json.decoder.JSONDecoder().scan_once


def _json_value(data: bytes) -> object:
    """json.loads without its Python layers (the worker runs this after every fork: fewer pages touched)."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return json.loads(data)  # json also reads UTF-16 and UTF-32
    if text[:1] == "{":
        value, end = _SCAN(text, 0)
        if end == len(text):
            return value
    return json.loads(text)


def _write_frame(fd: int, obj: dict) -> None:
    data = _json_bytes(obj)
    payload = struct.pack(">I", len(data)) + data
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _bind(func: object, kwargs: dict):
    import inspect  # only for callables that are not plain functions: kept out of the worker, forks stay cheap

    return inspect.signature(func).bind(**kwargs)  # type: ignore[arg-type]


_KINDS = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD", "VAR_POSITIONAL", "KEYWORD_ONLY", "VAR_KEYWORD")


def _plain_function(func: object) -> bool:
    return type(func) is types.FunctionType and not hasattr(func, "__wrapped__") and not hasattr(func, "__signature__")


_SHAPES: dict[int, str] = {}
"""Parameter shapes of the code objects of compiled programs, by id (the worker holds them, so ids are theirs),
computed once per program by the worker instead of in every child."""


def index_shapes(code: types.CodeType) -> None:
    """Record the parameter shape of every function body compiled into ``code``."""
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _SHAPES[id(const)] = _code_shape(const)
            index_shapes(const)


def _params(func: object) -> str | None:
    """Parameter names and kinds, read off the code object of a plain function (inspect is slow in a fresh fork)."""
    if not _plain_function(func):
        return _signature(func)[1]
    shape = _SHAPES.get(id(func.__code__))  # type: ignore[attr-defined]
    return shape if shape is not None else _code_shape(func.__code__)  # type: ignore[attr-defined]


def _code_shape(code: types.CodeType) -> str:
    names = code.co_varnames
    positional, posonly, kwonly = code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount
    shape = [f"{names[i]}:{_KINDS[0] if i < posonly else _KINDS[1]}" for i in range(positional)]
    index = positional + kwonly
    if code.co_flags & 0x04:
        shape.append(f"{names[index]}:{_KINDS[2]}")
        index += 1
    shape += [f"{names[i]}:{_KINDS[3]}" for i in range(positional, positional + kwonly)]
    if code.co_flags & 0x08:
        shape.append(f"{names[index]}:{_KINDS[4]}")
    return ",".join(shape)


def _signature(func: object) -> tuple[str | None, str | None]:
    """The printable signature and its shape (parameter names and kinds, no defaults or annotations)."""
    import inspect

    try:
        sig = inspect.signature(func)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, None
    shape = ",".join(f"{p.name}:{p.kind.name}" for p in sig.parameters.values())
    return normalize_text(str(sig))[:MESSAGE_CHARS], shape


def _private_workdir(tmpdir: str) -> str:
    """Show the slot's directory at one fixed path (own mount namespace), so that paths a program sees do not
    depend on which slot ran it; without the privilege to do so, keep the slot path."""
    if _LIBC.unshare(CLONE_NEWNS) != 0:
        return tmpdir
    if _LIBC.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return tmpdir
    if _LIBC.mount(tmpdir.encode(), WORKDIR.encode(), None, MS_BIND, None) != 0:
        return tmpdir
    return WORKDIR


LIMIT_FIELDS = ("memory_mb", "timeout_s", "max_file_mb", "max_open_files", "max_processes")


def rlimits(job: dict) -> tuple:
    """The (resource, (soft, hard)) pairs one execution runs under, in the order they are set."""
    memory = int(job["memory_mb"]) << 20
    cpu = math.ceil(float(job["timeout_s"])) + 1
    size = int(job["max_file_mb"]) << 20
    files = int(job["max_open_files"])
    processes = int(job["max_processes"])
    return ((resource.RLIMIT_AS, (memory, memory)), (resource.RLIMIT_CPU, (cpu, cpu + 1)),
            (resource.RLIMIT_FSIZE, (size, size)), (resource.RLIMIT_NOFILE, (files, files)),
            (resource.RLIMIT_CORE, (0, 0)), (resource.RLIMIT_NPROC, (processes, processes)))


def _confine(job: dict, uid: int | None, tmpdir: str, wfd: int, mount_ns: int | None = None,
             devnull: int | None = None) -> None:
    """Per-execution confinement. What can be shared (environment, signal dispositions, seccomp, network, the
    slot's mount namespace, an open /dev/null) was set once in the worker: every Python line here costs
    copy-on-write page faults in a fresh fork."""
    os.setsid()
    if uid is not None and tmpdir != WORKDIR:
        if mount_ns is not None and _LIBC.setns(mount_ns, CLONE_NEWNS) == 0:
            tmpdir = WORKDIR
        else:
            tmpdir = _private_workdir(tmpdir)
    if devnull is None:
        devnull = os.open(os.devnull, os.O_RDONLY)
    out = os.open(tmpdir + "/.stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.dup2(wfd, RESULT_FD)
    os.closerange(RESULT_FD + 1, 1 << 16)
    os.chdir(tmpdir)
    if tmpdir != WORKDIR:
        os.environ["HOME"] = os.environ["TMPDIR"] = tmpdir
    setrlimit = resource.setrlimit
    for which, value in job.get("_rlimits") or rlimits(job):
        setrlimit(which, value)
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    # random reseeds itself from os.urandom in every fork (its register_at_fork hook): fresh entropy per run.


_BUILTINS: dict = {}
"""The pristine builtins, taken once by the worker before any fork."""


_BUILTINS_VERSION: list[int] = []
_BUILTINS_TAG: list = []
"""A ctypes view of builtins' version tag, made once by the worker: making one in every child costs faults."""


def _dict_version(mapping: dict) -> int | None:
    """CPython's per-dict modification tag (PEP 509), read without touching the values: in a fresh fork every
    refcount write is a copy-on-write page fault, and restoring builtins blindly costs ~100 of them."""
    if sys.implementation.name != "cpython" or sys.version_info[:2] not in ((3, 11), (3, 12)):
        return None
    return ctypes.c_uint64.from_address(id(mapping) + 24).value


def _restore_builtins() -> None:
    """Undo what the program did to builtins before our own code (encoding, reporting) relies on them."""
    version = _BUILTINS_TAG[0].value if _BUILTINS_TAG else _dict_version(builtins.__dict__)
    if version is not None and _BUILTINS_VERSION and version == _BUILTINS_VERSION[0]:
        return
    builtins.__dict__.clear()
    builtins.__dict__.update(_BUILTINS)


def _execute(job: dict, code: object, tests: object) -> dict:
    try:
        return _run_program(job, code, tests)
    finally:
        _restore_builtins()


def _run_program(job: dict, code: object, tests: object) -> dict:
    namespace: dict = {"__name__": PROGRAM_MODULE, "__builtins__": builtins}
    started = time.perf_counter()
    result: dict
    try:
        exec(code, namespace)
    except BaseException as exc:
        _restore_builtins()
        return _fails_to_load(exc)
    try:
        if job["kind"] == "script":
            os.write(RESULT_FD, LOADED)
            exec(tests, namespace)
            result = {"kind": "returned", "value": "None", "type": "NoneType"}
            result["digest"] = result["loose_digest"] = digest(Encoder().encode(None))
        else:
            func = namespace.get(job["entry_point"])
            if func is None or not callable(func):
                what = "is not defined" if func is None else f"is a {qualname(type(func))}, not callable"
                return {"kind": "invalid", "reason": "no_entry_point",
                        "message": f"entry point {job['entry_point']!r} {what}"}
            params = _params(func)
            os.write(RESULT_FD, LOADED)
            kwargs = job["_kwargs"]
            if isinstance(kwargs, Exception):
                return {"kind": "invalid", "reason": "input_not_literal", "message": _message(kwargs)}
            if _plain_function(func):
                try:
                    value = func(**kwargs)
                except TypeError as exc:
                    if exc.__traceback__ is not None and exc.__traceback__.tb_next is not None:
                        raise
                    return _not_bound(func, exc, params)
            else:
                try:
                    bound = _bind(func, kwargs)
                except TypeError as exc:
                    return _not_bound(func, exc, params)
                value = func(*bound.args, **bound.kwargs)
            elapsed = time.perf_counter() - started
            _restore_builtins()
            try:
                result = describe_value(value, int(job["max_result_nodes"]), job.get("compare", "strict"))
            except EncodeLimit as exc:
                result = {"kind": "resource_limit", "limit": "result_size", "message": str(exc)}
            except RecursionError:
                result = {"kind": "resource_limit", "limit": "result_size", "message": "result nested too deeply"}
            result["params"] = params
            result["run_s"] = elapsed
            return result
    except MemoryError:
        result = {"kind": "resource_limit", "limit": "memory", "message": "MemoryError"}
    except BaseException as exc:
        _restore_builtins()
        result = describe_exception(exc)
    result["run_s"] = time.perf_counter() - started
    return result


def _fails_to_load(exc: BaseException) -> dict:
    """The module raised while loading (imports, annotations, decorators, module-level code): the program is not a
    function that exists, so this is never one half of a divergence (DESIGN.md §3)."""
    type_name = qualname(type(exc))
    if isinstance(exc, MemoryError):
        type_name = "MemoryError"
    return {"kind": "invalid", "reason": "fails_to_load", "type": type_name,
            "message": f"{type_name}: {_message(exc)}"[:MESSAGE_CHARS]}


def _not_bound(func: object, exc: TypeError, params: str | None) -> dict:
    return {"kind": "invalid", "reason": "input_does_not_bind", "message": _message(exc),
            "signature": _signature(func)[0], "params": params}


def _thread_count() -> int:
    """More than one thread means one of them could fork while we sweep: then the worker sweeps again."""
    try:
        links = os.stat("/proc/self/task").st_nlink  # 2 + threads (procfs): one stat, where listdir costs faults
        return links - 2 if links > 2 else len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def run_child(job: dict, code: object, tests: object, uid: int | None, tmpdir: str, wfd: int,
              mount_ns: int | None = None, devnull: int | None = None) -> None:
    """Never returns: confine, run, report on fd 3, kill our own uid's leftovers, exit."""
    status = 0
    try:
        _confine(job, uid, tmpdir, wfd, mount_ns, devnull)
        outcome = _execute(job, code, tests)
        outcome["threads"] = _thread_count()
        try:
            _write_frame(RESULT_FD, outcome)
        except (ValueError, TypeError, OverflowError):
            _write_frame(RESULT_FD, {"kind": "crashed", "message": "unserialisable outcome"})
    except BaseException:
        status = 70
    finally:
        if uid is not None:
            os.kill(-1, signal.SIGKILL)
        os._exit(status)


def _warm_child_path() -> None:
    """Run the pure parts of what every child runs (describing, digesting, encoding the report) in the worker, so
    that CPython's adaptive interpreter has quickened and specialised their bytecode here, once: left to the
    children, each would rewrite the same code objects again (copy-on-write faults) and run them cold."""
    def sample(x, /, y=1, *args, z, **kw):
        return x

    values = (0, 7, -3, 2**70, 1.5, 3.0, float("nan"), True, None, "text", "", [1, "a"], (1, 2.0), {"k": [1]},
              {3, 1}, b"x", 1j)
    for _ in range(64):
        for value in values:
            outcome = describe_value(value, 10_000, "strict,loose")
            outcome["params"] = _params(sample)
            outcome["run_s"] = 1e-05
            outcome["threads"] = 1
            frame = _json_bytes(outcome)
            _decode_frame(struct.pack(">I", len(frame)) + frame)
        _json_bytes(describe_exception(ValueError("warm")))
        _restore_builtins()
        _thread_count()
        _plain_function(sample)


# --------------------------------------------------------------------------------------------- the worker
class Slot:
    __slots__ = (
        "buffer",
        "deadline",
        "index",
        "job",
        "loaded",
        "mount_ns",
        "overflow",
        "pid",
        "pidfd",
        "position",
        "rfd",
        "started",
        "timed_out",
        "tmpdir",
        "uid",
    )

    def __init__(self, index: int, uid: int | None, mount_ns: int | None = None) -> None:
        self.index = index
        self.uid = uid
        self.mount_ns = mount_ns


class Worker:
    def __init__(self, slots: int, uid_base: int | None, tmp_root: str, tmpfs_mb: int = 64) -> None:
        self.root = os.getuid() == 0
        self.uid_base = uid_base if self.root else None
        self.slots_total = slots if self.root else 1
        self.tmp_root = tmp_root
        self.programs: dict[str, object] = {}
        self.counter = 0
        self.info: dict = {}
        self.running_pids: set[int] = set()
        self.tmpfs_mb = tmpfs_mb
        self.slot_tmpfs = False
        self.slot_dirs: list[str] = []
        self.slot_namespaces: list[int | None] = []
        self.devnull: int | None = None

    # ---- lifecycle
    def setup(self) -> None:
        _LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        network = isolate_network()
        seccomp = install_seccomp()
        for name in PRELOAD:
            try:
                __import__(name)
            except ImportError:
                pass
        os.makedirs(self.tmp_root, exist_ok=True)
        self.slot_dirs = [self._slot_dir(i) for i in range(self.slots_total)]
        self.slot_namespaces = [self._slot_namespace(d) if self.uid_base is not None and d != WORKDIR else None
                                for d in self.slot_dirs]
        self.devnull = os.open(os.devnull, os.O_RDONLY)
        # ctypes sets a foreign function up on its first call (page faults in every fresh fork): pay it here, once
        _LIBC.setns(-1, CLONE_NEWNS)  # EBADF
        for name in ("unshare", "mount"):
            getattr(_LIBC, name)
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        hash_seed = os.environ.get("PYTHONHASHSEED")
        os.environ.clear()
        os.environ.update({"HOME": WORKDIR, "TMPDIR": WORKDIR, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        _BUILTINS.update(builtins.__dict__)
        version = _dict_version(builtins.__dict__)
        if version is not None:
            _BUILTINS_VERSION.append(version)
            _BUILTINS_TAG.append(ctypes.c_uint64.from_address(id(builtins.__dict__) + 24))
        _warm_child_path()
        gc.collect()
        gc.freeze()
        self.info = {
            "op": "hello",
            "python": sys.version.split()[0],
            "implementation": sys.implementation.name,
            "pid": os.getpid(),
            "uid": os.getuid(),
            "per_slot_uids": self.uid_base is not None,
            "slots": self.slots_total,
            "hash_seed": hash_seed,
            "network": network,
            "seccomp": seccomp,
            "slot_tmpfs": self.slot_tmpfs,
            "slot_namespaces": sum(ns is not None for ns in self.slot_namespaces),
        }

    def _slot_dir(self, index: int) -> str:
        """A private tmpfs per slot (when we may mount) so one execution's disk use cannot starve another's."""
        if self.slots_total == 1 and self.uid_base is None:
            os.makedirs(WORKDIR, mode=0o700, exist_ok=True)
            return WORKDIR
        os.makedirs(WORKDIR, exist_ok=True)
        path = os.path.join(self.tmp_root, f"slot{index}")
        os.makedirs(path, exist_ok=True)
        if self.root and self.tmpfs_mb:
            uid = self.uid_base + index if self.uid_base is not None else 0
            options = f"size={self.tmpfs_mb}m,mode=0700,uid={uid},gid={uid}".encode()
            if _LIBC.mount(b"tmpfs", path.encode(), b"tmpfs", 0x2 | 0x4 | 0x8, options) == 0:  # nosuid,nodev,noexec
                self.slot_tmpfs = True
                return path
        if self.uid_base is not None:
            os.chown(path, self.uid_base + index, self.uid_base + index)
        os.chmod(path, 0o700)
        return path

    @staticmethod
    def _slot_namespace(tmpdir: str) -> int | None:
        """A mount namespace per slot, made once, where the slot's directory shows at WORKDIR: children enter it
        (setns) instead of making a namespace and two mounts per execution (dear to build and to tear down).
        Children drop to the slot uid right after, so they cannot change it. None when it cannot be made (then
        each child unshares as before)."""
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                os.close(ready_r)
                os.close(go_w)
                os.write(ready_w, b"1" if _private_workdir(tmpdir) == WORKDIR else b"0")
                os.read(go_r, 1)
                status = 0
            finally:
                os._exit(status)
        os.close(ready_w)
        os.close(go_r)
        fd = None
        try:
            if os.read(ready_r, 1) == b"1":
                fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            fd = None
        finally:
            os.close(go_w)
            os.close(ready_r)
            os.waitpid(pid, 0)
        return fd

    def compile(self, key: str, source: str) -> object:
        cached = self.programs.get(key)
        if cached is None:
            try:
                cached = compile(source, "<program>", "exec", dont_inherit=True)
            except SyntaxError as exc:
                cached = {"kind": "invalid", "reason": "syntax_error", "message": f"{exc.msg} (line {exc.lineno})"}
            except (ValueError, UnicodeError, MemoryError, RecursionError, OverflowError) as exc:
                cached = {"kind": "invalid", "reason": "source_invalid", "message": f"{type(exc).__name__}: {exc}"}
            if len(self.programs) > 512:
                self.programs.clear()
                _SHAPES.clear()
            if isinstance(cached, types.CodeType):
                index_shapes(cached)
            self.programs[key] = cached
        return cached

    # ---- one batch
    def run_batch(self, programs: dict[str, str], jobs: list[dict]) -> list[dict]:
        results: list[dict | None] = [None] * len(jobs)
        free = [Slot(i, None if self.uid_base is None else self.uid_base + i,
                     self.slot_namespaces[i] if self.slot_namespaces else None) for i in range(self.slots_total)]
        running: dict[int, Slot] = {}
        poller = select.poll()
        fd_owner: dict[int, Slot] = {}
        pending = self._prepare(programs, jobs, results)
        self._run_prepared(pending, results, free, running, poller, fd_owner)
        lost = {"kind": "crashed", "message": "no result"}
        return [self._settle(r) if type(r) is tuple else r if r is not None else dict(lost) for r in results]

    def _run_prepared(self, pending: list[tuple], results: list[dict | None], free: list[Slot],
                      running: dict[int, Slot], poller: select.poll, fd_owner: dict[int, Slot]) -> None:
        """Fork, watch and reap until every prepared job has a result."""
        while pending or running:
            while pending and free:
                position, job, code, tests = pending.pop()
                slot = free.pop()
                self._start(slot, job, position, code, tests)
                running[slot.pid] = slot
                self.running_pids.add(slot.pid)
                poller.register(slot.pidfd, select.POLLIN)
                poller.register(slot.rfd, select.POLLIN)
                fd_owner[slot.pidfd] = fd_owner[slot.rfd] = slot
            if not running:
                continue
            now = time.monotonic()
            # poll() takes a C int of milliseconds: wake at least every second, whatever the budget
            wait_ms = max(0, min(1000, int((min(s.deadline for s in running.values()) - now) * 1000) + 1))
            for fd, _event in poller.poll(wait_ms):
                slot = fd_owner.get(fd)
                if slot is None or slot.pid not in running:
                    continue
                if fd == slot.rfd:
                    self._drain(slot, final=False)
                else:
                    poller.unregister(slot.pidfd)
                    poller.unregister(slot.rfd)
                    del fd_owner[slot.pidfd], fd_owner[slot.rfd]
                    del running[slot.pid]
                    self.running_pids.discard(slot.pid)
                    results[slot.position] = self._finish(slot)
                    free.append(slot)
            now = time.monotonic()
            for slot in running.values():
                if not slot.timed_out and now >= slot.deadline:
                    self._expire(slot, now)

    def _prepare(self, programs: dict[str, str], jobs: list[dict], results: list[dict | None]) -> list[tuple]:
        """Compile programs and parse inputs for the whole batch before the first fork, last job first (popped).
        Done between forks instead, every parse would write to pages a running child still shares with us (one
        copy-on-write fault each, per execution); done here, once per batch."""
        parsed_inputs: dict[str, object] = {}
        limits: dict[tuple, tuple] = {}
        prepared = []
        for position, job in enumerate(jobs):
            code = self.compile(job["program"], programs.get(job["program"], ""))
            tests = self.compile(job["tests"], programs.get(job["tests"], "")) if job.get("tests") else None
            for compiled in (code, tests):
                if isinstance(compiled, dict):
                    results[position] = dict(compiled)
                    break
            else:
                if job.get("kind", "call") == "call":
                    job["_kwargs"] = self._parse_input(parsed_inputs, job.get("input", "{}"))
                try:
                    key = tuple(job[name] for name in LIMIT_FIELDS)
                    job["_rlimits"] = limits.get(key) or limits.setdefault(key, rlimits(job))
                except (KeyError, TypeError, ValueError, OverflowError):
                    pass  # the child tries again and fails there: crashed, as a malformed job always was
                prepared.append((position, job, code, tests))
        prepared.reverse()
        return prepared

    @staticmethod
    def _parse_input(cache: dict[str, object], literal: str) -> object:
        """Parse a literal keyword dict once per batch, before forking: data only (``ast.literal_eval``), and
        every child still gets its own copy (fork). Returns the exception when the input is unusable."""
        value = cache.get(literal)
        if value is None:
            try:
                value = ast.literal_eval(literal)
                if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                    value = ValueError("input is not a dict of keyword arguments")
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
                value = exc
            cache[literal] = value
        return value

    def _start(self, slot: Slot, job: dict, position: int, code: object, tests: object) -> None:
        self.counter += 1
        tmpdir = self.slot_dirs[slot.index]
        rfd, wfd = os.pipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(rfd)
            run_child(job, code, tests, slot.uid, tmpdir, wfd, slot.mount_ns, self.devnull)
        os.close(wfd)
        os.set_blocking(rfd, False)
        slot.pid, slot.rfd, slot.pidfd = pid, rfd, os.pidfd_open(pid)
        slot.buffer = bytearray()
        slot.job, slot.position, slot.tmpdir = job, position, tmpdir
        slot.started, slot.deadline = started, started + float(job["timeout_s"])
        slot.timed_out = slot.overflow = slot.loaded = False

    def _expire(self, slot: Slot, now: float) -> None:
        """At the wall-clock deadline, kill a child that used its CPU budget. A child that was starved (other
        executions hogging the cores) or waited gets more wall time, up to STARVED_WALL_FACTOR x the budget, so
        that a neighbour's fork bomb cannot turn a benign program into a false timeout."""
        budget = float(slot.job["timeout_s"])
        elapsed = now - slot.started
        used = _cpu_seconds(slot.pid)
        if used is not None and used < 0.95 * budget and elapsed < STARVED_WALL_FACTOR * budget:
            slot.deadline = min(now + max(0.05, budget - used), slot.started + STARVED_WALL_FACTOR * budget)
            return
        slot.timed_out = True
        self._kill(slot)

    def _drain(self, slot: Slot, final: bool = True) -> None:
        """Move what the child wrote into the slot's buffer, killing it past the size cap. While it runs
        (``final`` False) a short read means the pipe is empty: stop there rather than read again into
        BlockingIOError (an exception per wake-up, between forks, costs copy-on-write faults)."""
        limit = int(slot.job["max_result_bytes"])
        while True:
            try:
                chunk = os.read(slot.rfd, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                return
            slot.buffer += chunk
            if not final and len(chunk) < 1 << 16 and len(slot.buffer) <= limit:
                return
            if len(slot.buffer) > limit:
                slot.overflow = True
                slot.loaded = slot.loaded or slot.buffer[:1] == LOADED
                slot.buffer.clear()
                self._kill(slot)
                return

    def _kill(self, slot: Slot) -> None:
        for target in (-slot.pid, slot.pid):
            try:
                os.kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _sweep(self, slot: Slot) -> None:
        """Kill every process left by an execution: the slot uid's (root) or our orphans (unprivileged)."""
        for _ in range(50):
            if slot.uid is not None:
                pid = os.fork()
                if pid == 0:
                    try:
                        os.setgid(slot.uid)
                        os.setuid(slot.uid)
                        os.kill(-1, signal.SIGKILL)
                    finally:
                        os._exit(0)
                os.waitpid(pid, 0)
            else:
                for child in _children():
                    if child not in self.running_pids:
                        try:
                            os.kill(child, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
            self._reap()
            if not (_uid_alive(slot.uid) if slot.uid is not None else _children_beyond(self.running_pids)):
                return
            time.sleep(0.001)

    def _reap(self) -> None:
        """Collect zombie orphans, never a running slot's child (its status belongs to _finish)."""
        for pid in _children():
            if pid not in self.running_pids:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def _finish(self, slot: Slot) -> tuple:
        """Reap a child, sweep its slot and keep what it reported as raw bytes: decoding and building the outcome
        wait for the batch's end (``_settle``), when no child shares our pages (every object made while children
        live is a copy-on-write fault in the worker)."""
        _, status = os.waitpid(slot.pid, 0)
        elapsed = time.monotonic() - slot.started
        os.close(slot.pidfd)
        if not slot.overflow:
            self._drain(slot)
        os.close(slot.rfd)
        loaded = slot.loaded or slot.buffer[:1] == LOADED
        frame = bytes(slot.buffer[1:] if slot.buffer[:1] == LOADED else slot.buffer)
        # a report ends with its thread count (run_child); anything else, or a forged one, is swept below
        clean = (not slot.overflow and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
                 and frame.endswith(CLEAN_TAIL))
        if not clean or slot.uid is None or _uid_alive(slot.uid):  # a program can forge a clean frame
            self._sweep(slot)
        _wipe(self.slot_dirs[slot.index])
        return (frame, status, loaded, slot.timed_out, slot.overflow, slot.job["timeout_s"], elapsed)

    @staticmethod
    def _settle(raw: tuple) -> dict:
        """The outcome of one reaped child (see ``_finish``)."""
        frame, status, loaded, timed_out, overflow, timeout_s, elapsed = raw
        result = _decode_frame(frame) if not overflow else None
        if result is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            result.pop("threads", None)
        if timed_out:
            result = {"kind": "timeout", "message": f"no result within {timeout_s} s"}
        elif overflow:
            result = {"kind": "resource_limit", "limit": "result_size", "message": "result message over the cap"}
        elif result is None:
            result = _classify_status(status)
        if not loaded and result["kind"] in ("timeout", "resource_limit", "crashed"):
            result = {"kind": "invalid", "reason": "fails_to_load", "type": result["kind"],
                      "message": f"{result['kind']} while loading the module: {result.get('message', '')}"}
        result["wall_s"] = round(elapsed, 6)
        return result

    # ---- serving
    def serve(self, rfile, wfd: int) -> None:
        _write_frame(wfd, self.info)
        while True:
            header = _read_exact(rfile, 4)
            if header is None:
                return
            request = json.loads(_read_exact(rfile, struct.unpack(">I", header)[0]) or b"{}")
            op = request.get("op")
            if op == "exit":
                return
            if op == "ping":
                _write_frame(wfd, {"op": "pong"})
            elif op == "batch":
                results = self.run_batch(request.get("programs", {}), request.get("jobs", []))
                _write_frame(wfd, {"op": "results", "results": results})
            else:
                _write_frame(wfd, {"op": "error", "message": f"unknown op {op!r}"})


def _children() -> list[int]:
    pids: list[int] = []
    task_dir = f"/proc/{os.getpid()}/task"
    for task in os.listdir(task_dir):
        try:
            with open(f"{task_dir}/{task}/children") as handle:
                pids += [int(p) for p in handle.read().split()]
        except OSError:
            pass
    return pids


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / _CLOCK_TICKS


def _wipe(path: str) -> None:
    """Empty a slot directory, whatever modes the program left on what it created; never raise. The captured
    output file may stay: the next child truncates it when it opens it."""
    try:
        names = os.listdir(path)
        if not names:
            return
        if names == [".stdout"]:
            info = os.lstat(os.path.join(path, ".stdout"))
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid():
                return
        for root, dirs, _files in os.walk(path):
            for name in dirs:
                try:
                    os.chmod(os.path.join(root, name), 0o700)
                except OSError:
                    pass
        for entry in os.scandir(path):
            if entry.is_dir(follow_symlinks=False):
                import shutil  # rare path: a program left directories behind

                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
    except OSError:
        pass


def _children_beyond(keep: set[int]) -> bool:
    return any(pid not in keep for pid in _children())


def _uid_alive(uid: int) -> bool:
    """Is any process of this uid still visible (bwrap's PID namespace keeps this scan short)?"""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    return True
            except OSError:
                pass
    return False


def _decode_frame(data: bytes) -> dict | None:
    if len(data) < 4:
        return None
    size = struct.unpack(">I", data[:4])[0]
    if len(data) != 4 + size:
        return None
    try:
        result = _json_value(data[4:])
    except (ValueError, StopIteration):
        return None
    if not isinstance(result, dict) or result.get("kind") not in (
        "returned", "raised", "resource_limit", "crashed", "invalid"
    ):
        return None
    return result


def _classify_status(status: int) -> dict:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGXFSZ:
            return {"kind": "resource_limit", "limit": "file_size", "message": "file or output size limit",
                    "signal": name}
        if sig == signal.SIGXCPU:
            return {"kind": "timeout", "message": "CPU time limit", "signal": name}
        return {"kind": "crashed", "signal": name, "message": f"killed by {name}"}
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    return {"kind": "crashed", "exit_code": code, "message": f"exited with code {code} without a result"}


def _read_exact(rfile, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = rfile.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _options(argv: list[str]) -> dict[str, str]:
    """``--name value`` pairs (argparse would cost every fork its memory; see PRELOAD)."""
    known = {"--slots", "--uid-base", "--tmp", "--tmpfs-mb", "--worker-memory-mb"}
    if len(argv) % 2 or any(flag not in known for flag in argv[::2]):
        raise SystemExit(f"usage: runner.py [{' | '.join(sorted(known))} VALUE]...; got {argv}")
    return dict(zip(argv[::2], argv[1::2], strict=True))


def main(argv: list[str]) -> int:
    """Serve framed JSON on stdin/stdout until told to exit or stdin closes."""
    options = _options(argv)
    limit = int(options.get("--worker-memory-mb", 4096)) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    uid_base = int(options["--uid-base"]) if "--uid-base" in options else None
    worker = Worker(int(options.get("--slots", 2)), uid_base, options.get("--tmp", "/tmp/sinq-work"),
                    int(options.get("--tmpfs-mb", 64)))
    worker.setup()
    in_fd, out_fd = os.dup(0), os.dup(1)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = sys.stdout
    worker.serve(os.fdopen(in_fd, "rb"), out_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

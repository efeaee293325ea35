"""Degenerate variants: pairs that verify but teach the wrong lesson. Pure, no I/O.

Each flag is a code stored on the pair (``pairs.flags``); a flagged pair stays stored and visible and is left out of
training sets by default. A flag is raised only for what the *variant* adds: a reference the original makes as well
is part of the problem, not of the variant.

- ``environment_dependent``: the variant reads something outside its input: the clock (``time.time``,
  ``datetime.now``/``today``…), its process (``os.getpid``/``getppid``, uid, ``threading.get_ident``…), the host
  (``socket``, ``platform``, ``uuid.uuid1``/``uuid4``/``getnode``, ``getpass``), the environment (``os.environ``,
  ``os.getenv``, ``sys.argv``/``executable``/``platform``/``version``/``path``…), files (``open``, ``input``,
  ``os.listdir``/``stat``/``getcwd``…, the ``os.path`` functions that look at the disk — not ``join``/``basename``
  and the other pure string ones —, ``pathlib``, ``glob``, ``shutil``, ``tempfile``, ``subprocess``), randomness
  (``random``, ``secrets``, ``os.urandom``), dynamic imports (``__import__``, ``importlib``, which can reach all of
  these unseen), module metadata (``__file__``, ``__name__``), or names a path of the sandbox in a string
  (``/tmp``, ``/proc``, ``/opt/python``, ``/sinq``…). Its divergence says where it ran, not what it was given.
- ``hash_puzzle``: the variant hides its divergence behind a hash or checksum of the input (``hashlib``, ``hmac``,
  ``zlib.crc32``/``adler32``, ``binascii.crc32``/``crc_hqx``, builtin ``hash(...)`` or ``id(...)``): the
  degenerate incentive the SInQ paper warns about, a divergence no reasoning about the code can find.
- ``oversized_input``: the diverging input literal is longer than ``max_input_factor`` × the largest seed input and
  than ``min_input_chars`` characters: a divergence reached by size (limits, recursion depth), not by meaning.
  Without seed inputs there is nothing to compare with and the flag is never raised.

Detection reads the AST: imports (with their aliases), dotted names and attributes, calls of builtins that the
program does not rebind, and string constants. Code that does not parse has no references (it cannot verify).
"""

from __future__ import annotations

import ast

from sinq.game import syntax
from sinq.game.config import FlagsConfig

ENVIRONMENT_DEPENDENT = "environment_dependent"
HASH_PUZZLE = "hash_puzzle"
OVERSIZED_INPUT = "oversized_input"
FLAGS = (ENVIRONMENT_DEPENDENT, HASH_PUZZLE, OVERSIZED_INPUT)

_ENV_MODULES = {"socket", "platform", "getpass", "pathlib", "glob", "shutil", "tempfile", "subprocess", "random",
                "secrets", "importlib", "sysconfig", "site", "resource", "locale", "signal", "ctypes", "gc",
                "multiprocessing", "fileinput", "pwd", "grp", "posix", "_thread"}
_ENV_NAMES = {
    "time": {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "process_time",
             "process_time_ns", "thread_time", "thread_time_ns", "clock_gettime", "clock_gettime_ns", "localtime",
             "gmtime", "ctime", "asctime", "strftime"},
    "datetime.datetime": {"now", "today", "utcnow"},
    "datetime.date": {"today"},
    "os": {"getpid", "getppid", "getpgrp", "getpgid", "getsid", "getuid", "geteuid", "getgid", "getegid",
           "getgroups", "getlogin", "environ", "environb", "getenv", "getenvb", "putenv", "unsetenv", "getcwd",
           "getcwdb", "listdir", "scandir", "walk", "fwalk", "stat", "lstat", "access", "open", "fdopen", "popen",
           "system", "uname", "cpu_count", "process_cpu_count", "sched_getaffinity", "urandom", "getrandom",
           "times", "getloadavg", "get_terminal_size", "readlink", "chdir", "kill", "remove", "unlink", "mkdir",
           "makedirs", "rename", "replace"},
    "os.path": {"exists", "lexists", "isfile", "isdir", "islink", "ismount", "getsize", "getmtime", "getatime",
                "getctime", "abspath", "realpath", "expanduser", "expandvars", "samefile", "relpath"},
    "sys": {"argv", "orig_argv", "executable", "platform", "version", "version_info", "hexversion", "path",
            "modules", "flags", "prefix", "base_prefix", "exec_prefix", "implementation", "stdin", "getrefcount",
            "getallocatedblocks", "_getframe", "thread_info", "api_version"},
    "uuid": {"uuid1", "uuid4", "getnode"},
    "threading": {"get_ident", "get_native_id", "current_thread", "active_count", "enumerate"},
    "io": {"open", "open_code"},
    "builtins": {"open", "input", "__import__"},
    "inspect": {"stack", "currentframe", "getfile", "getsourcefile", "getmodule", "getsource"},
}
_ENV_BUILTINS = {"open", "input", "__import__", "breakpoint"}
_ENV_DUNDERS = {"__file__", "__name__", "__spec__", "__loader__", "__cached__", "__path__"}
_SANDBOX_PATHS = ("/tmp", "/proc", "/dev", "/sys", "/etc", "/home", "/root", "/opt/python", "/sinq", "/usr", "/var",
                  "/run", "/bin", "/lib", "~/")

_HASH_MODULES = {"hashlib", "hmac", "_hashlib", "_md5", "_sha1", "_sha256", "_sha512", "_blake2", "crypt"}
_HASH_NAMES = {"zlib": {"crc32", "adler32"}, "binascii": {"crc32", "crc_hqx"}, "builtins": {"hash", "id"}}
_HASH_BUILTINS = {"hash", "id"}


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name the program binds anywhere: such a name is not the builtin of that name."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
    return bound


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name → the dotted module path it stands for (``import os.path as p`` gives ``p`` → ``os.path``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def _matches(dotted: str, modules: set[str], names: dict[str, set[str]]) -> str | None:
    """The reference ``dotted`` makes, or None: a whole listed module, or a listed name of a module."""
    top = dotted.split(".")[0]
    if top in modules:
        return top
    for module, members in names.items():
        if dotted.startswith(module + "."):
            member = dotted[len(module) + 1:].split(".")[0]
            if member in members:
                return f"{module}.{member}"
    return None


def references(code: str) -> tuple[set[str], set[str]]:
    """(environment references, hash/checksum references) the program makes; both empty when it does not parse."""
    try:
        tree = syntax.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(), set()
    aliases = _aliases(tree)
    bound = _bound_names(tree)
    environment: set[str] = set()
    hashing: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in _ENV_MODULES:
                    environment.add(top)
                if top in _HASH_MODULES:
                    hashing.add(top)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                environment |= {m for m in [_matches(dotted, _ENV_MODULES, _ENV_NAMES)] if m}
                hashing |= {m for m in [_matches(dotted, _HASH_MODULES, _HASH_NAMES)] if m}
        elif isinstance(node, (ast.Attribute, ast.Name)) and not isinstance(getattr(node, "ctx", None), ast.Store):
            dotted = _dotted(node, aliases)
            if dotted is not None:
                environment |= {m for m in [_matches(dotted, _ENV_MODULES, _ENV_NAMES)] if m}
                hashing |= {m for m in [_matches(dotted, _HASH_MODULES, _HASH_NAMES)] if m}
            if isinstance(node, ast.Name) and node.id not in bound and node.id not in aliases:
                if node.id in _ENV_BUILTINS or node.id in _ENV_DUNDERS:
                    environment.add(node.id)
                if node.id in _HASH_BUILTINS:
                    hashing.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            text = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
            for path in _SANDBOX_PATHS:
                if text.startswith(path) and (len(text) == len(path) or path.endswith("/")
                                              or text[len(path)] in "/."):
                    environment.add(f"path:{path}")
    return environment, hashing


def _longest(literals: list[str]) -> int:
    return max((len(literal) for literal in literals), default=0)


def flags(original: str, variant: str, diverging_input: str, seed_inputs: list[str],
          config: FlagsConfig | None = None) -> list[str]:
    """The degenerate flags of one pair, in ``FLAGS`` order ([] when clean)."""
    config = config or FlagsConfig()
    original_env, original_hash = references(original)
    variant_env, variant_hash = references(variant)
    raised: list[str] = []
    if variant_env - original_env:
        raised.append(ENVIRONMENT_DEPENDENT)
    if variant_hash - original_hash:
        raised.append(HASH_PUZZLE)
    largest = _longest(seed_inputs)
    size = len(diverging_input)
    if largest and size > config.max_input_factor * largest and size > config.min_input_chars:
        raised.append(OVERSIZED_INPUT)
    return raised

"""When two programs are the same program, or nearly: the keys behind duplicate detection and decontamination.

Pure functions, no I/O. Two programs that differ only in the names of their locals, their formatting, comments or
docstrings have the same **normalised AST hash**. Near-duplicates are found by **MinHash** (``datasketch``) over
shingles of the normalised token stream, and benchmark overlap by **n-gram** (13 by default) overlap of the same
stream, so renaming every local does not hide a copy. **Edit spans** say where a variant changes its original
(difflib over the two token streams), so two variants of one original can be told apart when they change it in
different places even though they are nearly the same text.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import io
import itertools
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from datasketch import MinHash

from sinq.game import syntax

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:] or [ast.Pass()]
    return body


class _Normaliser(ast.NodeTransformer):
    """Renames each function's parameters and locals to v0, v1, … in order of first appearance; globals, builtins,
    attributes and the functions' own names stay, since they are part of what the program means."""

    def __init__(self) -> None:
        self.stack: list[dict[str, str]] = []

    @staticmethod
    def _locals(node: ast.AST) -> list[str]:
        names: list[str] = []
        arguments = node.args  # type: ignore[attr-defined]
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
            names.append(arg.arg)
        for extra in (arguments.vararg, arguments.kwarg):
            if extra is not None:
                names.append(extra.arg)
        declared_global: set[str] = set()
        body = node.body if isinstance(node.body, list) else [node.body]  # type: ignore[attr-defined]
        pending: list[ast.AST] = list(body)
        while pending:
            inner = pending.pop(0)
            if isinstance(inner, (ast.Global, ast.Nonlocal)):
                declared_global.update(inner.names)
            if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                names.append(inner.id)
            elif isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(inner.name)
                pending.extend(inner.decorator_list)
                continue
            elif isinstance(inner, ast.Lambda):
                continue
            elif isinstance(inner, ast.ExceptHandler) and inner.name:
                names.append(inner.name)
            pending.extend(ast.iter_child_nodes(inner))
        ordered = []
        for name in names:
            if name not in declared_global and name not in ordered:
                ordered.append(name)
        return ordered

    def _scope(self, node: ast.AST) -> ast.AST:
        outer = self.stack[-1] if self.stack else {}
        mapping = dict(outer)
        depth = len(self.stack)
        for index, name in enumerate(self._locals(node)):
            # numbered within this scope, so one helper nested in two different functions normalises alike
            mapping[name] = f"v{index}" if depth == 0 else f"v{depth}_{index}"
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.body = _strip_docstring(node.body)
            node.decorator_list = [self.visit(d) for d in node.decorator_list]
            if node.returns is not None:
                node.returns = self.visit(node.returns)
            defaults = node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
            for default in defaults:
                self.visit(default)
        self.stack.append(mapping)
        try:
            for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs,  # type: ignore[attr-defined]
                        node.args.vararg, node.args.kwarg]:  # type: ignore[attr-defined]
                if arg is not None:
                    arg.arg = mapping.get(arg.arg, arg.arg)
                    if arg.annotation is not None:
                        arg.annotation = self.visit(arg.annotation)
            if isinstance(node, ast.Lambda):
                node.body = self.visit(node.body)
            else:
                node.body = [self.visit(statement) for statement in node.body]  # type: ignore[attr-defined]
        finally:
            self.stack.pop()
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        renamed = self.stack[-1].get(node.name) if self.stack else None
        self._scope(node)
        if renamed:
            node.name = renamed
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return self._scope(node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if self.stack and node.id in self.stack[-1]:
            node.id = self.stack[-1][node.id]
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        if node.name and self.stack and node.name in self.stack[-1]:
            node.name = self.stack[-1][node.name]
        self.generic_visit(node)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.body = _strip_docstring(node.body)
        renamed = self.stack[-1].get(node.name) if self.stack else None
        self.generic_visit(node)
        if renamed:
            node.name = renamed
        return node


def normalized_ast(code: str) -> ast.Module | None:
    """The program with docstrings dropped and locals renamed canonically; None when it does not parse."""
    try:
        tree = syntax.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    tree.body = _strip_docstring(tree.body) if tree.body else tree.body
    try:
        return ast.fix_missing_locations(_Normaliser().visit(tree))
    except RecursionError:
        return None


def ast_hash(code: str) -> str | None:
    """Equal for programs that differ only in local names, formatting, comments and docstrings."""
    tree = normalized_ast(code)
    if tree is None:
        return None
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def code_tokens(code: str) -> list[str]:
    """The normalised program as a token stream (names renamed, no comments or layout); the raw token stream
    when it does not parse, and whitespace-split words when it does not even tokenize."""
    tree = normalized_ast(code)
    text = code
    if tree is not None:
        try:
            text = syntax.unparse(tree)
        except (ValueError, RecursionError):
            text = code
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
    try:
        return [t.string for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type not in skip]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return text.split()


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """Every run of n tokens; a stream shorter than n is one gram of itself (short programs still match)."""
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def minhash(tokens: Sequence[str], shingle: int = 5, num_perm: int = 128, seed: int = 1) -> MinHash:
    """A MinHash signature of the token shingles; ``jaccard`` of two signatures estimates their set overlap."""
    signature = MinHash(num_perm=num_perm, seed=seed)
    for gram in ngrams(tokens, shingle):
        signature.update("\x1f".join(gram).encode("utf-8", "surrogatepass"))
    return signature


def overlap(grams: set[tuple[str, ...]], index: Iterable[tuple[str, ...]] | set[tuple[str, ...]]) -> float:
    """Share of ``grams`` found in ``index`` (0 when there are none)."""
    if not grams:
        return 0.0
    known = index if isinstance(index, (set, frozenset)) else set(index)
    return sum(gram in known for gram in grams) / len(grams)


Span = tuple[int, int]


def edit_spans(base: Sequence[str], other: Sequence[str]) -> list[Span]:
    """Where ``other`` changes ``base`` (difflib over the two token streams), as closed ranges of *slots*: slot 2k
    is the gap before base token k, slot 2k + 1 is token k. A replaced or deleted token covers its own slot; an
    insertion covers its gap and the tokens on either side (``1`` → ``2 + 1`` is as much a change of that ``1`` as
    ``1`` → ``2``); an insertion or deletion that could equally sit a few tokens earlier or later (``x + 1`` →
    ``x + 1 + 1``: which ``+ 1`` is new?) covers every place it could sit. So two edits of one place meet however
    difflib happened to align them."""
    spans: list[Span] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, base, other, autojunk=False).get_opcodes():
        if tag == "replace":
            spans.append((2 * i1 + 1, 2 * i2 - 1))
        elif tag in ("insert", "delete"):
            moved, start, end = (other, j1, j2) if tag == "insert" else (base, i1, i2)
            left = right = 0
            while start - left > 0 and moved[start - left - 1] == moved[end - left - 1]:
                left += 1
            while end + right < len(moved) and moved[start + right] == moved[end + right]:
                right += 1
            if tag == "insert":
                spans.append((2 * (i1 - left) - 1, 2 * (i1 + right) + 1))
            else:
                spans.append((2 * (i1 - left) + 1, 2 * (i2 + right) - 1))
    return spans


def spans_overlap(first: Iterable[Span], second: Iterable[Span]) -> bool:
    """Whether two variants' edits of one original (``edit_spans`` against the same base) touch a common place."""
    others = list(second)
    return any(a <= d and c <= b for a, b in first for c, d in others)


@dataclass(frozen=True)
class Fingerprint:
    """What deduplication compares of one variant of one original: its normalised AST hash, a MinHash of its token
    shingles, where it edits the original and its normalised tokens (empty where unknown)."""

    ast_hash: str | None
    signature: MinHash
    spans: tuple[Span, ...]
    tokens: tuple[str, ...] = ()


def fingerprint(original_tokens: Sequence[str], variant: str, shingle: int = 3, num_perm: int = 128,
                seed: int = 1) -> Fingerprint:
    tokens = code_tokens(variant)
    return Fingerprint(ast_hash(variant), minhash(tokens, shingle, num_perm, seed),
                       tuple(edit_spans(original_tokens, tokens)), tuple(tokens))


PLACE_GAP = 1
"""Two changes at most this many tokens apart are one place (a replaced token and an inserted one beside it)."""


def one_place(earlier: Sequence[str], later: Sequence[str], gap: int = PLACE_GAP) -> bool:
    """Whether two variants differ from each other at one place: the tokens one changes of the other form one run,
    no two changes more than ``gap`` tokens apart. Two mutants rewritten alike (issue 27) both edit the rewritten
    region of the original, yet differ from each other at their two mutation sites: two places, two pairs."""
    changed = [(i1, i2) for tag, i1, i2, _, _ in
               difflib.SequenceMatcher(None, earlier, later, autojunk=False).get_opcodes() if tag != "equal"]
    return all(start - end <= gap for (_, end), (start, _) in itertools.pairwise(changed))


def near_duplicate(earlier: Fingerprint, later: Fingerprint, threshold: float,
                   same_original: bool = True) -> float | None:
    """The estimated Jaccard when ``later`` is a near duplicate of ``earlier``, else None.

    All mutants of one original are within a few tokens of each other, so similarity alone cannot tell a one-token
    change of an earlier variant (a near duplicate) from a change at another place of the original (a distinct
    pair). Two variants of the same original are near duplicates only if they are similar, their edits of the
    original touch one place *and* they differ from each other at one place (``one_place``); variants of different
    originals, by similarity alone."""
    similarity = earlier.signature.jaccard(later.signature)
    if similarity < threshold:
        return None
    if same_original and not spans_overlap(earlier.spans, later.spans):
        return None
    if same_original and earlier.tokens and later.tokens and not one_place(earlier.tokens, later.tokens):
        return None
    return similarity

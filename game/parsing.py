"""Parsing model responses into the game's parts, with a real Markdown parser (markdown-it) and fallbacks.

Alice: program + diverging input, or a reason code; her equivalent rewrite: a program, or a reason code. Bob: a
diverging input and/or an "equivalent" claim. Nothing here executes code: programs are checked with ``ast`` (syntax,
entry point, signature) and inputs are data (``game.inputs``); binding is checked against a signature rebuilt from
the AST.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

from sinq.game import syntax
from sinq.game.inputs import InputError, parse_input

PYTHON_LANGS = {"", "py", "python", "python3", "py3", "pycon", "ipython"}
_MD = MarkdownIt("commonmark")


@dataclass
class Block:
    section: str
    lang: str
    code: str


@dataclass
class Sections:
    headings: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    text: dict[str, str] = field(default_factory=dict)


def _section_name(title: str) -> str:
    """'**Generated Program:**' / 'Step 2 - generated program' -> 'generated program'; 'Equivalent?' -> 'equivalent'."""
    words = re.sub(r"[^a-z0-9 ]+", " ", title.lower()).split()
    joined = " ".join(words)
    for name in ("generated program", "diverging input", "equivalent", "analysis"):
        if name in joined:
            return name
    if "program" in joined or "code" in joined:
        return "generated program"
    if "input" in joined or "example" in joined:
        return "diverging input"
    return joined


def split_sections(text: str) -> Sections:
    """Headings of any level (emphasis stripped) and the fenced/indented code blocks under each."""
    result = Sections()
    current = ""
    tokens = _MD.parse(text.replace("\r\n", "\n"))
    lines = text.replace("\r\n", "\n").split("\n")
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            inline = tokens[index + 1]
            title = "".join(child.content for child in (inline.children or []) if child.type in ("text", "code_inline"))
            current = _section_name(title)
            result.headings.append(current)
            continue
        if token.type in ("fence", "code_block"):
            lang = (token.info or "").strip().split(" ")[0].lower()
            result.blocks.append(Block(current, lang, token.content))
        elif token.type == "paragraph_open" and token.map:
            start, end = token.map
            result.text[current] = result.text.get(current, "") + "\n".join(lines[start:end]) + "\n"
    return result


def _unclosed_fence(text: str) -> bool:
    return len(re.findall(r"^\s*(```|~~~)", text, flags=re.MULTILINE)) % 2 == 1


def _python_blocks(blocks: list[Block]) -> list[Block]:
    return [b for b in blocks if b.lang in PYTHON_LANGS]


def _defines(code: str, entry_point: str | None) -> bool:
    pattern = rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(" if entry_point else r"^\s*def\s+\w+\s*\("
    return re.search(pattern, code, flags=re.MULTILINE) is not None


def _as_input(code: str) -> str | None:
    try:
        value = syntax.literal_eval(code.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None
    return code.strip() if isinstance(value, dict) else None


def _find_function(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    found = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            found = node
    return found


def signature_of(code: str, entry_point: str) -> inspect.Signature | None:
    """The entry point's signature, from the AST (defaults become placeholders; nothing is evaluated)."""
    try:
        tree = syntax.parse(code)
    except (SyntaxError, ValueError):
        return None
    node = _find_function(tree, entry_point)
    if node is None:
        return None
    args = node.args
    params: list[inspect.Parameter] = []
    positional = args.posonlyargs + args.args
    first_default = len(positional) - len(args.defaults)
    for i, arg in enumerate(positional):
        kind = (inspect.Parameter.POSITIONAL_ONLY if i < len(args.posonlyargs)
                else inspect.Parameter.POSITIONAL_OR_KEYWORD)
        default = ... if i >= first_default else inspect.Parameter.empty
        params.append(inspect.Parameter(arg.arg, kind, default=default))
    if args.vararg:
        params.append(inspect.Parameter(args.vararg.arg, inspect.Parameter.VAR_POSITIONAL))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(inspect.Parameter(arg.arg, inspect.Parameter.KEYWORD_ONLY,
                                        default=... if default is not None else inspect.Parameter.empty))
    if args.kwarg:
        params.append(inspect.Parameter(args.kwarg.arg, inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(params)


def _shape(signature: inspect.Signature) -> list[tuple[str, str]]:
    return [(p.name, p.kind.name) for p in signature.parameters.values()]


@dataclass
class AliceParse:
    program: str | None = None
    input: str | None = None
    reason: str | None = None
    detail: str | None = None

    @property
    def valid(self) -> bool:
        return self.reason is None


@dataclass
class BobParse:
    input: str | None = None
    equivalent: bool | None = None
    reason: str | None = None
    detail: str | None = None


def _pick_program(sections: Sections, entry_point: str | None) -> str | None:
    python = _python_blocks(sections.blocks)
    in_section = [b for b in python if b.section == "generated program" and _as_input(b.code) is None]
    defining = [b for b in in_section if _defines(b.code, entry_point)] or in_section
    if defining:
        return defining[-1].code
    anywhere = [b for b in python if _defines(b.code, entry_point)]
    return anywhere[-1].code if anywhere else None


def _pick_input(sections: Sections) -> tuple[str | None, str | None]:
    """(literal, raw) — raw is the best candidate text even when it is not a dict literal (for the reason)."""
    python = _python_blocks(sections.blocks)
    in_section = [b for b in python if b.section == "diverging input"]
    for block in reversed(in_section):
        literal = _as_input(block.code)
        if literal is not None:
            return literal, block.code
    text = sections.text.get("diverging input", "")
    if text.strip():
        literal = _as_input(text)
        if literal is not None:
            return literal, text
    for block in reversed(python):
        literal = _as_input(block.code)
        if literal is not None:
            return literal, block.code
    raw = in_section[-1].code if in_section else (text.strip() or None)
    return None, raw


def parse_alice(text: str, original: str | None = None, entry_point: str | None = None,
                finish_reason: str | None = None) -> AliceParse:
    """Alice's program and diverging input, validated as far as possible without running anything."""
    if not text or not text.strip():
        return AliceParse(reason="empty_response")
    sections = split_sections(text)
    truncated = finish_reason == "length" or _unclosed_fence(text)
    program = _pick_program(sections, entry_point)
    literal, raw_input = _pick_input(sections)
    if program is None:
        return AliceParse(reason="truncated" if truncated else "no_program")
    result = AliceParse(program=program, input=literal)
    result.reason, result.detail = _program_problem(program, original, entry_point, truncated)
    if result.reason is not None:
        return result
    if literal is None:
        if truncated:
            result.reason = "truncated"
        elif raw_input is None:
            result.reason = "no_input"
        else:
            result.reason, result.detail = "input_not_literal", raw_input.strip()[:200]
        return result
    try:
        value = parse_input(literal).value
    except InputError as exc:
        result.input = None
        result.reason, result.detail = exc.reason, str(exc)
        return result
    if entry_point is not None:
        signature = signature_of(program, entry_point)
        try:
            signature.bind(**value)  # type: ignore[union-attr]
        except TypeError as exc:
            result.reason, result.detail = "input_does_not_bind", str(exc)
    return result


@dataclass
class EquivalentParse:
    program: str | None = None
    reason: str | None = None
    detail: str | None = None

    @property
    def valid(self) -> bool:
        return self.reason is None


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def surface_key(code: str) -> str | None:
    """What a rewrite must change to count as one: the AST less docstrings (comments, formatting and docstrings do
    not count); None when the code does not parse."""
    try:
        return ast.dump(_without_docstrings(syntax.parse(code)))
    except (SyntaxError, ValueError, RecursionError):
        return None


def _program_problem(program: str, original: str | None, entry_point: str | None,
                     truncated: bool) -> tuple[str | None, str | None]:
    """(reason, detail) when a proposed program cannot stand in for the original: it does not parse, lacks the
    entry point, or changes its signature; (None, None) when it can."""
    try:
        syntax.parse(program)
    except (SyntaxError, ValueError) as exc:
        return ("truncated" if truncated else "syntax_error"), str(exc)
    if entry_point is not None:
        variant_sig = signature_of(program, entry_point)
        if variant_sig is None:
            return "no_entry_point", None
        original_sig = signature_of(original, entry_point) if original else None
        if original_sig is not None and _shape(original_sig) != _shape(variant_sig):
            return "signature_changed", f"{original_sig} -> {variant_sig}"
    return None, None


def parse_alice_equivalent(text: str, original: str | None = None, entry_point: str | None = None,
                           finish_reason: str | None = None) -> EquivalentParse:
    """Alice's equivalent rewrite, checked as far as possible without running anything: a program that parses,
    defines the entry point with the original's signature and differs from the original by more than comments,
    formatting and docstrings. Whether it *is* equivalent only the fuzz filter can say."""
    if not text or not text.strip():
        return EquivalentParse(reason="empty_response")
    truncated = finish_reason == "length" or _unclosed_fence(text)
    program = _pick_program(split_sections(text), entry_point)
    if program is None:
        return EquivalentParse(reason="truncated" if truncated else "no_program")
    result = EquivalentParse(program=program)
    result.reason, result.detail = _program_problem(program, original, entry_point, truncated)
    if result.reason is not None:
        return result
    if original is not None and surface_key(program) == surface_key(original):
        result.reason = "identical"
    return result


def _claim(text: str) -> bool | None:
    words = text.strip().lower()
    if not words:
        return None
    first = re.sub(r"[^a-z ]", " ", words).split()
    if not first:
        return None
    if first[0] in ("no", "false") or "not equivalent" in words or "inequivalent" in words:
        return False
    if first[0] in ("yes", "true") or first[0] == "equivalent":
        return True
    return None


def parse_bob(text: str, finish_reason: str | None = None) -> BobParse:
    """Bob's diverging input and his equivalence claim; a missing input is a non-answer (counted as a failure)."""
    if not text or not text.strip():
        return BobParse(reason="empty_response")
    sections = split_sections(text)
    claim = _claim(sections.text.get("equivalent", "")) if "equivalent" in sections.headings else None
    if claim is None and "equivalent" in sections.headings:
        block = next((b for b in sections.blocks if b.section == "equivalent"), None)
        claim = _claim(block.code) if block else None
    literal, raw = _pick_input(sections)
    if literal is not None:
        try:
            parse_input(literal)
        except InputError as exc:
            return BobParse(equivalent=claim, reason=exc.reason, detail=str(exc))
        return BobParse(input=literal, equivalent=claim)
    if claim is True:
        return BobParse(equivalent=True, reason="claims_equivalent")
    if raw is not None:
        return BobParse(equivalent=claim, reason="input_not_literal", detail=raw.strip()[:200])
    truncated = finish_reason == "length" or _unclosed_fence(text)
    return BobParse(equivalent=claim, reason="truncated" if truncated else "no_input")


def normalize_input(literal: str) -> str:
    """One spelling per input value: identical inputs merge whatever their whitespace or quoting."""
    return parse_input(literal).literal


def merge_answers(answers: list[BobParse]) -> list[tuple[str, int]]:
    """Distinct inputs with their weight (how many answers proposed them), in first-seen order."""
    weights: dict[str, int] = {}
    for answer in answers:
        if answer.input is not None:
            key = normalize_input(answer.input)
            weights[key] = weights.get(key, 0) + 1
    return list(weights.items())

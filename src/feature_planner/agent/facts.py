"""Facts about a page's code, read from syntax trees, each with the lines that show it.

The offline engine builds its suggestions from these (``providers/offline.py``); nothing
here guesses: a fact is something the code shows, and its evidence is the lines that show
it (path, 1-based lines, a verbatim quote), so that ``agent.evidence.verify`` confirms it.

Code is parsed with tree-sitter (the TSX grammar for .tsx/.jsx/.js, the TypeScript one for
.ts, Python's for .py), never matched with regular expressions over the text. A .vue or
.svelte component is read whole (``agent.sfc``): its template with the HTML grammar (Vue) or
Svelte's, its ``<script>`` blocks with TypeScript's, its ``<style>`` blocks with CSS's, and
the expressions of its template (``:class``, ``v-for``, ``{#each}``) with TSX's; every line
cited is the line of the file. Regular expressions only split what the trees give (the
words of a class string, the words of a comment) and read the project's prose rules
(CLAUDE.md, CONTRIBUTING).

The kinds of fact (``FactKind``):

- ``unchecked-fetch``: a ``fetch(...)`` (or ``requests``/``httpx`` call) whose response's
  ``ok``/``status`` is never looked at in the function that makes it (a response returned to
  the caller or handed to another function is not claimed);
- ``unpaged-list``: a list loaded with no page/limit/cursor/offset in its URL or arguments,
  whose result reaches a JSX ``.map`` (through variables, a destructuring pattern
  ``{ data: rows = [] }``, a ``useState`` setter, or a loader function in this file or
  another; not through ``.slice``/``.limit``…) or a template's ``v-for``/``{#each}`` that does not
  slice it (through the variables, refs, ``this.x`` or ``.then`` callbacks that hold it; a
  SvelteKit page's ``data`` from a ``load`` in another file); in Python, a query that loads
  every row (``.objects.all()``, ``.query(...).all()``) returned or looped over, in a
  function that neither slices nor paginates;
- ``fixed-grid``: ``grid-cols-N`` / ``gridTemplateColumns`` (in a component also
  ``class``/``:class``/``class:x``, ``style``, ``grid-template-columns`` and ``@apply`` in
  its ``<style>``) in a file with no responsive variant (``sm:``, ``md:``…), no media or
  container query (nor a SCSS mixin, which may hold one) and no media hook;
- ``todo``: a ``TODO``/``FIXME`` comment (``//``, ``/* */``, ``#``, ``<!-- -->``);
- ``unlabelled-input``: an ``<input>``/``<select>``/``<textarea>`` with no ``aria-label``,
  ``aria-labelledby``, ``title``, no ``<label htmlFor>``/``<label for>`` naming its ``id``
  and no enclosing ``<label>``; bound forms count (``:aria-label``, ``aria-label={x}``,
  Svelte's ``{title}``); an element with spread props (``{...props}``, ``v-bind="obj"``),
  a type chosen at run time, or a hidden one is not claimed; also in the ``.html``
  templates a Python view renders (``render(request, "app/list.html")``, found in the
  nearest ``templates/`` folder), read with the HTML grammar (a ``{{ form.field }}`` is
  text, not an element; an element with a ``{% … %}`` among its attributes is not claimed);
- ``missing-route-state``: a Next.js ``app/**/page.*`` with no ``loading`` or no ``error``
  file beside it or in a parent segment;
- ``untested-component``: CLAUDE.md or CONTRIBUTING asks for a test for every component,
  and a component of the page has no test file beside it (``X.test.tsx``, ``X.spec.tsx``,
  ``__tests__/X.test.tsx``).

Blocking file I/O through the ``Sandbox``: call ``find_facts`` from a worker thread.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path

import tree_sitter_python
import tree_sitter_typescript
from tree_sitter import Language, Node, Parser, Tree

from ..models import Evidence
from . import jsx_controls, sfc
from .providers.repo_scan import resolve_import
from .sandbox import Sandbox, SandboxError
from .syntax import ancestors, descendants, node_text

__all__ = ["Fact", "FactKind", "FactReport", "find_facts", "language_of", "syntax_trees"]

MAX_FILE_BYTES = 256 * 1024
MAX_NEARBY = 30  # files read around the page's route folder
MAX_NEARBY_ENTRIES = 5_000  # directory entries looked at to find them
MAX_QUOTE = 160
RULE_DOCS = ("CLAUDE.md", "CONTRIBUTING.md", "CONTRIBUTING", "docs/CONTRIBUTING.md")
_CODE_SUFFIXES = (
    ".tsx", ".jsx", ".ts", ".js", ".mjs", ".cjs", ".mts", ".cts", ".vue", ".svelte", ".py"
)  # fmt: skip


class FactKind(StrEnum):
    UNCHECKED_FETCH = "unchecked-fetch"
    UNPAGED_LIST = "unpaged-list"
    FIXED_GRID = "fixed-grid"
    TODO = "todo"
    UNLABELLED_INPUT = "unlabelled-input"
    MISSING_ROUTE_STATE = "missing-route-state"
    UNTESTED_COMPONENT = "untested-component"


@dataclass(frozen=True, slots=True)
class Fact:
    kind: FactKind
    path: str  # the file the fact is about
    symbol: str | None  # the function or component it is in, when it has a name
    detail: str  # what the code shows, one sentence, naming the file and symbol
    evidence: tuple[Evidence, ...]  # 1 to 5 items, the first in ``path``
    own: bool = True  # in the page's own files (else a nearby file)
    note: str = ""  # kind-specific: a TODO's text, the missing companions, the rule
    minor: bool = False  # true today but of little weight (a route that loads no data yet)


@dataclass(slots=True)
class FactReport:
    facts: list[Fact] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    seconds: float = 0.0


# -- parsing ----------------------------------------------------------------------------------


@cache
def _language(name: str) -> Language:
    if name == "python":
        return Language(tree_sitter_python.language())
    if name == "typescript":
        return Language(tree_sitter_typescript.language_typescript())
    if name in ("html", "svelte", "css"):
        return sfc.grammar(name)
    return Language(tree_sitter_typescript.language_tsx())


def _parser(name: str) -> Parser:
    """A new parser each time (cheap): one parser must not serve two threads at once, and
    runs of several jobs call ``find_facts`` from worker threads of their own."""
    return Parser(_language(name))


def language_of(path: str) -> str | None:
    """The grammar for ``path``: ``tsx``, ``typescript``, ``python``, ``vue`` (a .vue or
    .svelte component: its template, script and style blocks), or None when it is not code
    this module reads."""
    suffix = posixpath.splitext(path)[1].lower()
    if suffix in (".tsx", ".jsx", ".js", ".mjs", ".cjs"):
        return "tsx"
    if suffix in (".ts", ".mts", ".cts"):
        return "typescript"
    if suffix == ".py":
        return "python"
    if suffix in (".vue", ".svelte"):
        return "vue"
    return None


def _dialect(path: str) -> str:
    """A component's template language: ``svelte`` for a .svelte file, else ``vue``."""
    return "svelte" if path.lower().endswith(".svelte") else "vue"


def syntax_trees(path: str, text: str) -> list[Tree]:
    """The syntax trees of the code in ``text`` (the file ``path``): one for a TS/TSX/JS or
    Python file, one per ``<script>`` block of a .vue/.svelte file, none for anything else.
    The same grammars as the facts, for other readers of code (the repository map)."""
    language = language_of(path)
    if language is None:
        return []
    if language == "vue":
        pieces = [(name, code) for name, _, code in _script_blocks(_dialect(path), text)]
    else:
        pieces = [(language, text)]
    return [_parser(name).parse(code.encode("utf-8", errors="replace")) for name, code in pieces]


def _script_blocks(dialect: str, text: str) -> Iterator[tuple[str, int, str]]:
    """(language, first row, source) of each ``<script>`` block of a .vue (``dialect``
    ``vue``) or .svelte file, read from the component's syntax tree."""
    tree = _parser(_TEMPLATE_GRAMMAR[dialect]).parse(text.encode("utf-8", errors="replace"))
    for block in sfc.blocks(tree.root_node):
        if block.language != "css":
            yield block.language, block.row, block.code


_TEMPLATE_GRAMMAR = {"vue": "html", "svelte": "svelte"}


class _Source:
    """One parsed file (or script block): its tree, its lines, and its nodes by type."""

    def __init__(self, rel: str, lines: list[str], language: str, code: str, row0: int) -> None:
        self.rel = rel
        self.lines = lines  # the whole file's lines, for quotes
        self.language = language
        self.row0 = row0  # the row of ``code``'s first line in the file
        self.tree = _parser(language).parse(code.encode("utf-8", errors="replace"))
        self.by_type: dict[str, list[Node]] = {}
        stack = [self.tree.root_node]
        while stack:
            node = stack.pop()
            self.by_type.setdefault(node.type, []).append(node)
            stack.extend(reversed(node.children))

    def nodes(self, *types: str) -> list[Node]:
        found = [node for kind in types for node in self.by_type.get(kind, ())]
        return sorted(found, key=lambda node: node.start_byte) if len(types) > 1 else found

    def line(self, node: Node) -> int:
        """The 1-based line of the file where ``node`` starts."""
        return node.start_point.row + self.row0 + 1

    def evidence(self, node: Node, *, line: int | None = None) -> Evidence | None:
        """The line where ``node`` starts (or ``line``), quoted (at most ``MAX_QUOTE``)."""
        number = line or self.line(node)
        if not 1 <= number <= len(self.lines):
            return None
        quote = " ".join(self.lines[number - 1].split())[:MAX_QUOTE].strip()
        if not quote:
            return None
        return Evidence(path=self.rel, start_line=number, end_line=number, quote=quote)

    def span(self, node: Node, max_lines: int = 5) -> Evidence | None:
        """The lines ``node`` spans (at most ``max_lines``), quoted (at most ``MAX_QUOTE``):
        a tag written over several lines is cited whole, not as its first line ``<input``."""
        start = self.line(node)
        end = min(node.end_point.row + self.row0 + 1, start + max_lines - 1, len(self.lines))
        if end <= start:
            return self.evidence(node)
        quote = " ".join(" ".join(self.lines[start - 1 : end]).split())[:MAX_QUOTE].strip()
        if not quote:
            return None
        return Evidence(path=self.rel, start_line=start, end_line=end, quote=quote)


_JS_FUNCTIONS = frozenset(
    {"function_declaration", "function_expression", "arrow_function", "method_definition",
     "generator_function_declaration", "function"}
)  # fmt: skip
_PY_FUNCTIONS = frozenset({"function_definition"})


def _function_of(node: Node, kinds: frozenset[str]) -> Node | None:
    return next((up for up in ancestors(node) if up.type in kinds), None)


def _name_of(function: Node | None) -> str | None:
    """The name of a function: declared, or the variable or property it is assigned to."""
    while function is not None:
        name = function.child_by_field_name("name")
        if name is not None:
            return node_text(name)
        parent = function.parent
        if parent is not None and parent.type == "variable_declarator":
            return node_text(parent.child_by_field_name("name"))
        function = _function_of(function, _JS_FUNCTIONS | _PY_FUNCTIONS)
    return None


# -- the facts of one file --------------------------------------------------------------------


@dataclass(slots=True)
class _FileFacts:
    facts: list[Fact] = field(default_factory=list)
    loaders: dict[str, Evidence] = field(default_factory=dict)  # function -> unpaged call
    renders: list[tuple[str, Evidence]] = field(default_factory=list)  # callee, .map line
    components: list[tuple[str, Evidence]] = field(default_factory=list)  # exported
    loads_data: bool = False  # awaits something, or calls fetch / a data hook
    data_call: Evidence | None = None  # the first call that loads or prefetches data
    imports: list[str] = field(default_factory=list)  # module specifiers, in order
    boundaries: _Boundaries | None = None  # the Suspense and error boundaries it renders
    templates: list[str] = field(default_factory=list)  # the templates a Python view renders


_FETCH_NAMES = frozenset({"fetch", "window.fetch", "globalThis.fetch", "self.fetch"})
_LIST_CALLS = frozenset(
    {"fetch", "window.fetch", "axios", "axios.get", "$fetch", "useFetch", "useSWR", "ky.get",
     "ofetch", "api.get", "http.get", "client.get"}
)  # fmt: skip
_DB_LIST_METHODS = frozenset({"findMany", "findAll"})
# Calls that load data for a view, by their last name: query hooks and prefetching
# (TanStack Query, tRPC, SWR, Nuxt), besides ``_LIST_CALLS``.
_DATA_CALLS = frozenset(
    {"useQuery", "useSuspenseQuery", "useInfiniteQuery", "useSuspenseInfiniteQuery",
     "useQueries", "useSuspenseQueries", "useSWR", "useSWRInfinite", "useAsyncData",
     "useLazyFetch", "useFetch", "prefetch", "batchPrefetch", "prefetchQuery",
     "prefetchInfiniteQuery", "ensureQueryData", "fetchQuery", "fetchInfiniteQuery"}
)  # fmt: skip
_PAGING = re.compile(
    r"page|limit|cursor|offset|per_?page|pagesize|\btake\b|\bskip\b|\bfirst\b|\bafter\b|"
    r"\brange\b|\btop\b",
    re.IGNORECASE,
)
_PAGING_METHODS = frozenset({"limit", "range", "paginate", "take", "slice", "skip", "offset"})
_CHECKS = frozenset({"ok", "status", "statusText", "status_code", "raise_for_status"})
_CHECKS |= {"is_success", "is_error"}
_TODO = re.compile(r"\b(TODO|FIXME)\b[:\s-]*(.*)")
_GRID = re.compile(r"^grid-cols-(\d+)$")
_RESPONSIVE = re.compile(r"^(sm|md|lg|xl|2xl|max-\w+|min-\[[^\]]*\]|@\w+):")
_FREE_GRID = re.compile(r"auto-fit|auto-fill|minmax", re.IGNORECASE)
_NO_LABEL_TYPES = frozenset({"hidden", "submit", "button", "reset", "image"})
_LABELLING = frozenset({"aria-label", "aria-labelledby", "title"})


def _js_facts(src: _Source, out: _FileFacts, grid: _Grid | None = None) -> None:
    """The facts of a JS/TS file, or of a component's script block (``grid`` then gathers
    the block's grids for the whole component)."""
    for call in src.nodes("call_expression"):
        if out.data_call is None and _loads_data(call):
            out.data_call = src.evidence(call)
        out.loads_data = out.loads_data or _call_name(call) in _LIST_CALLS
    out.loads_data = (
        out.loads_data or bool(src.nodes("await_expression")) or out.data_call is not None
    )
    for statement in src.nodes("import_statement", "export_statement"):
        source = statement.child_by_field_name("source")
        if source is not None:
            out.imports.append(node_text(source).strip("'\"`"))
    if out.boundaries is None:
        out.boundaries = _boundaries(src.tree.root_node, around_children=False)
    _js_fetches(src, out)
    _js_lists(src, out)
    if grid is None:
        _grid_fact(src.rel, _js_grid(src, _Grid()), out)
    else:
        _js_grid(src, grid)
    _todos(src, out)
    _inputs(src, out)
    _components(src, out)


def _loads_data(call: Node) -> bool:
    """A query hook or a prefetch: ``useSWR(k)``, ``trpc.x.useQuery()``,
    ``queryClient.prefetchQuery(o)``, ``prefetch(o)``, React's ``use(promise)`` (a bare
    ``fetch`` may be a form's POST: it counts only in the page itself, as ``loads_data``)."""
    name = _call_name(call)
    return name.rsplit(".", 1)[-1] in _DATA_CALLS or name in ("use", "React.use")


@dataclass(frozen=True, slots=True)
class _Boundaries:
    """Whether a file renders a ``<Suspense fallback=…>`` (feedback while a part loads) and
    an error boundary (``<ErrorBoundary>``, ``<Sentry.ErrorBoundary>``, ``<CatchBoundary>``)."""

    suspense: bool = False
    error: bool = False


def _boundaries(root: Node, *, around_children: bool) -> _Boundaries:
    """The boundaries rendered in ``root``; with ``around_children`` (a layout) only those
    that wrap its ``children``."""
    suspense = error = False
    stack = [root]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type != "jsx_element" or not node.named_children:
            continue
        opening = node.named_children[0]
        if opening.type != "jsx_opening_element":
            continue
        name = opening.child_by_field_name("name")
        if name is not None and name.type == "member_expression":
            name = name.child_by_field_name("property")
        tag = node_text(name)
        is_suspense = tag == "Suspense" and any(
            attribute.type == "jsx_attribute"
            and attribute.named_children
            and node_text(attribute.named_children[0]) == "fallback"
            for attribute in opening.named_children
        )
        is_error = "ErrorBoundary" in tag or tag == "CatchBoundary"
        if not (is_suspense or is_error):
            continue
        if around_children and not any(
            node_text(part) == "children" for part in descendants(node) if part.type in _NAMES
        ):
            continue
        suspense, error = suspense or is_suspense, error or is_error
    return _Boundaries(suspense, error)


_NAMES = frozenset({"identifier", "property_identifier"})


def _unwrap_await(node: Node) -> Node:
    return (
        node.parent if node.parent is not None and node.parent.type == "await_expression" else node
    )


def _chain(call: Node) -> tuple[Node, list[str]]:
    """The outermost call of a promise chain on ``call`` (``fetch(u).then(f).catch(g)``),
    and the methods chained."""
    methods: list[str] = []
    current = call
    while True:
        member = current.parent
        outer = member.parent if member is not None else None
        if member is None or member.type != "member_expression" or outer is None:
            return current, methods
        if outer.type != "call_expression" or member.child_by_field_name("object") != current:
            return current, methods
        methods.append(node_text(member.child_by_field_name("property")))
        current = outer


def _handed_on(call: Node) -> bool:
    """The response leaves the function: returned or passed on, without a ``.then`` that
    consumes it here (the caller may check it)."""
    outer, methods = _chain(call)
    if "then" in methods:
        return False
    outer = _unwrap_await(outer)
    parent = outer.parent
    if parent is None:
        return False
    if parent.type in ("return_statement", "arguments", "return"):
        return True
    return parent.type == "arrow_function" and parent.child_by_field_name("body") == outer


def _bound_name(call: Node) -> str | None:
    """The variable the (awaited) call's result is stored in."""
    parent = _unwrap_await(call).parent
    if parent is not None and parent.type in ("variable_declarator", "assignment"):
        name = parent.child_by_field_name("name") or parent.child_by_field_name("left")
        if name is not None and name.type == "identifier":
            return node_text(name)
    return None


def _js_fetches(src: _Source, out: _FileFacts) -> None:
    for call in src.nodes("call_expression"):
        if node_text(call.child_by_field_name("function")) not in _FETCH_NAMES:
            continue
        if _handed_on(call):
            continue  # the caller may check it: not claimed
        function = _function_of(call, _JS_FUNCTIONS)
        scope = function if function is not None else src.tree.root_node
        if _checks_status(scope, _bound_name(call)):
            continue
        item = src.evidence(call)
        if item is None:
            continue
        symbol = _name_of(function)
        where = f"`{symbol}` in {src.rel}" if symbol else src.rel
        out.facts.append(
            Fact(
                FactKind.UNCHECKED_FETCH,
                src.rel,
                symbol,
                f"{where} calls fetch() and never checks the response's ok or status, so a "
                "404 or 500 is read as if it were data",
                (item,),
            )
        )


def _checks_status(scope: Node, response: str | None) -> bool:
    for node in descendants(scope):
        if node.type in ("member_expression", "attribute"):
            field_node = node.child_by_field_name("property") or node.child_by_field_name(
                "attribute"
            )
            if node_text(field_node) in _CHECKS:
                return True
        elif node.type == "shorthand_property_identifier_pattern" and node_text(node) in _CHECKS:
            return True
        elif (
            response
            and node.type == "arguments"
            and any(node_text(arg) == response for arg in node.named_children)
        ):
            return True  # handed to a helper, which may check it
    return False


def _call_name(call: Node) -> str:
    function = call.child_by_field_name("function")
    return node_text(function) if function is not None else ""


def _method(call: Node) -> str:
    function = call.child_by_field_name("function")
    if function is not None and function.type == "member_expression":
        return node_text(function.child_by_field_name("property"))
    return ""


def _unpaged(call: Node) -> bool:
    """A list-loading call with no paging in its URL, its arguments, or its chain."""
    name, method = _call_name(call), _method(call)
    arguments = call.child_by_field_name("arguments")
    args = arguments.named_children if arguments is not None else []
    if name in _LIST_CALLS:
        if not args or args[0].type not in ("string", "template_string"):
            return False  # a URL built elsewhere: cannot tell
    elif method not in _DB_LIST_METHODS:
        return False
    if any(_PAGING.search(node_text(arg)) for arg in args):
        return False
    for up in ancestors(call):  # .limit(10), .range(0, 9) chained on the result
        if up.type == "call_expression" and _method(up) in _PAGING_METHODS:
            return False
        if up.type in ("expression_statement", "lexical_declaration", "return_statement"):
            break
    return True


def _js_lists(src: _Source, out: _FileFacts) -> None:
    """An unpaged call whose result reaches a JSX ``.map``: through variables
    (``res`` -> ``res.json()`` -> ``items``), a ``useState`` setter used where the call is
    made, or a loader function (this file's, or another's: ``out.renders``)."""
    unpaged = [call for call in src.nodes("call_expression") if _unpaged(call)]
    for call in unpaged:
        symbol = _name_of(_function_of(call, _JS_FUNCTIONS))
        item = src.evidence(call)
        if symbol and item is not None:
            out.loaders.setdefault(symbol, item)
    values: dict[str, Node] = {}  # variable -> the call whose (awaited) result it holds
    setters: dict[str, str] = {}  # useState setter -> its state variable
    for declarator in src.nodes("variable_declarator"):
        name = declarator.child_by_field_name("name")
        value = declarator.child_by_field_name("value")
        if value is not None and value.type == "await_expression" and value.named_children:
            value = value.named_children[0]
        if name is None or value is None or value.type != "call_expression":
            continue
        if name.type == "identifier":
            values[node_text(name)] = value
        elif name.type == "object_pattern":  # const { data: rows = [] } = useSWR(u, f)
            for bound in _bound_names(name):
                values.setdefault(bound, value)
        elif name.type == "array_pattern" and _call_name(value).endswith("useState"):
            pair = [n for n in name.named_children if n.type == "identifier"]
            if len(pair) == 2:
                setters[node_text(pair[1])] = node_text(pair[0])
    filled: dict[str, Node] = {}  # state variable -> the unpaged call that sets it
    for call in unpaged:
        scope = _function_of(call, _JS_FUNCTIONS) or src.tree.root_node
        for node in descendants(scope):
            if node.type == "identifier" and node_text(node) in setters:
                filled.setdefault(setters[node_text(node)], call)

    def origin(name: str, depth: int = 0) -> tuple[Node | None, str]:
        """The unpaged call of this file the variable comes from, or the function called."""
        if name in filled:
            return filled[name], ""
        value = values.get(name)
        if value is None or depth > 5:
            return None, ""
        if any(value == call for call in unpaged):
            return value, ""
        function = value.child_by_field_name("function")
        if function is not None and function.type == "member_expression":
            if _method(value) in _PAGING_METHODS:
                return None, ""  # rows.slice(0, 20): a page of it
            return origin(node_text(_root_object(function)), depth + 1)
        return None, _call_name(value)

    for call in src.nodes("call_expression"):
        if _method(call) != "map" or not _renders_jsx(call):
            continue
        item = src.evidence(call)
        receiver = call.child_by_field_name("function")
        if item is None or receiver is None:
            continue
        source, loader = origin(node_text(_root_object(receiver)))
        loaded = src.evidence(source) if source is not None else out.loaders.get(loader)
        if loaded is None:
            if loader:
                out.renders.append((loader, item))
            continue
        if any(fact.kind is FactKind.UNPAGED_LIST for fact in out.facts):
            continue
        out.facts.append(
            Fact(
                FactKind.UNPAGED_LIST,
                src.rel,
                loader or None,
                f"{src.rel} loads a list with no page, limit or cursor (line "
                f"{loaded.start_line}) and renders every item with .map (line {item.start_line})",
                (loaded, item) if loaded != item else (item,),
            )
        )


def _root_object(node: Node) -> Node:
    """``a`` of ``a.b.c`` (of the object of a member expression)."""
    current = node.child_by_field_name("object") if node.type == "member_expression" else node
    while current is not None and current.type == "member_expression":
        current = current.child_by_field_name("object")
    return current if current is not None else node


def _renders_jsx(call: Node) -> bool:
    arguments = call.child_by_field_name("arguments")
    if arguments is None:
        return False
    return any(
        node.type in ("jsx_element", "jsx_self_closing_element")
        for arg in arguments.named_children
        for node in descendants(arg)
    )


@dataclass(slots=True)
class _Grid:
    """A file's fixed grid columns (evidence, what is fixed) and whether anything in it is
    responsive (a breakpoint variant, a media or container query, a media hook)."""

    fixed: list[tuple[Evidence, str]] = field(default_factory=list)
    responsive: bool = False

    def add(self, src: _Source, node: Node, shown: str, *, line: int | None = None) -> None:
        item = src.evidence(node, line=line)
        if item is not None:
            self.fixed.append((item, shown))

    def classes(self, src: _Source, node: Node, text: str) -> None:
        """The words of a class list that starts where ``node`` starts."""
        for offset, line in enumerate(text.split("\n")):
            for token in line.split():
                if _RESPONSIVE.match(token):
                    self.responsive = True
                elif (columns := _GRID.match(token)) and int(columns.group(1)) > 1:
                    self.add(src, node, token, line=src.line(node) + offset)  # one fits a phone


_MEDIA_HOOKS = frozenset(
    {"useMediaQuery", "matchMedia", "useBreakpointValue", "useBreakpoints", "useDisplay"}
)


def _js_grid(src: _Source, grid: _Grid) -> _Grid:
    for fragment in src.nodes("string_fragment"):
        text = node_text(fragment)
        if "@media" in text:
            grid.responsive = True
        grid.classes(src, fragment, text)
    for name in src.nodes("identifier"):
        if node_text(name) in _MEDIA_HOOKS:
            grid.responsive = True
    for pair in src.nodes("pair"):
        if node_text(pair.child_by_field_name("key")).strip("'\"") == "gridTemplateColumns":
            value = node_text(pair.child_by_field_name("value"))
            if not _FREE_GRID.search(value):
                grid.add(src, pair, "gridTemplateColumns: " + value)
    return grid


def _grid_fact(rel: str, grid: _Grid, out: _FileFacts) -> None:
    if grid.responsive or not grid.fixed:
        return
    fixed = sorted(grid.fixed, key=lambda pair: pair[0].start_line)
    items = tuple(dict.fromkeys(item for item, _ in fixed))[:3]
    shown = next((what for _, what in fixed if _GRID.match(what)), fixed[0][1])
    out.facts.append(
        Fact(
            FactKind.FIXED_GRID,
            rel,
            None,
            f"{rel} lays items out in a fixed grid ({shown}) with no sm:/md:/lg: "
            "variant or media query, so the columns stay the same on a phone",
            items,
            note=shown,
        )
    )


def _todos(src: _Source, out: _FileFacts) -> None:
    for comment in src.nodes("comment"):
        for offset, line in enumerate(node_text(comment).split("\n")):
            found = _TODO.search(line)
            if not found:
                continue
            item = src.evidence(comment, line=src.line(comment) + offset)
            if item is None:
                continue
            said = found.group(2).strip().rstrip("*/").strip().removesuffix("-->").strip()
            said = said or "(no text)"
            out.facts.append(
                Fact(
                    FactKind.TODO,
                    src.rel,
                    None,
                    f"{src.rel} line {item.start_line} has a {found.group(1)}: {said}",
                    (item,),
                    note=said,
                )
            )


def _inputs(src: _Source, out: _FileFacts) -> None:
    """Form controls with no accessible name (``jsx_controls``)."""
    items: list[Evidence] = []
    tags: list[str] = []
    in_form_item = False
    for control in jsx_controls.unlabelled(src.tree.root_node):
        item = src.span(control.node)
        if item is not None and item not in items:
            items.append(item)
            tags.append(f"<{control.tag}>")
            in_form_item = in_form_item or control.in_form_item
    if items:
        listed = ", ".join(dict.fromkeys(tags))
        form_label = ", no <FormLabel> in its <FormItem>" if in_form_item else ""
        out.facts.append(
            Fact(
                FactKind.UNLABELLED_INPUT,
                src.rel,
                None,
                f"{src.rel} has {len(items)} form control(s) ({listed}) with no label: no "
                f"aria-label, no <label htmlFor> naming it{form_label} and no enclosing "
                "<label>",
                tuple(items[:5]),
                note=listed,
            )
        )


def _components(src: _Source, out: _FileFacts) -> None:
    for statement in src.nodes("export_statement"):
        declaration = statement.child_by_field_name("declaration")
        names: list[Node] = []
        if declaration is not None and declaration.type == "function_declaration":
            names = [n for n in [declaration.child_by_field_name("name")] if n is not None]
        elif declaration is not None and declaration.type == "lexical_declaration":
            names = [
                n
                for d in declaration.named_children
                if (n := d.child_by_field_name("name")) is not None
            ]
        elif declaration is None:
            value = statement.child_by_field_name("value")
            if value is not None and value.type in ("function_expression", "function"):
                names = [n for n in [value.child_by_field_name("name")] if n is not None]
            elif value is not None and value.type == "identifier":  # export default Page
                names = [value]
        for name in names:
            text = node_text(name)
            item = src.evidence(statement)
            if text[:1].isupper() and item is not None:
                out.components.append((text, item))


def _py_facts(src: _Source, out: _FileFacts) -> None:
    _todos(src, out)
    _py_lists(src, out)
    _py_templates(src, out)
    for call in src.nodes("call"):
        name = node_text(call.child_by_field_name("function"))
        module, _, verb = name.partition(".")
        if module not in ("requests", "httpx") or verb not in ("get", "post", "put", "patch"):
            continue
        parent = call.parent
        if parent is not None and parent.type in ("return_statement", "argument_list"):
            continue
        function = _function_of(call, _PY_FUNCTIONS)
        scope = function if function is not None else src.tree.root_node
        bound = None
        if parent is not None and parent.type == "assignment":
            bound = node_text(parent.child_by_field_name("left"))
        if _py_checks(scope, bound):
            continue
        item = src.evidence(call)
        if item is None:
            continue
        symbol = _name_of(function)
        where = f"`{symbol}` in {src.rel}" if symbol else src.rel
        out.facts.append(
            Fact(
                FactKind.UNCHECKED_FETCH,
                src.rel,
                symbol,
                f"{where} calls {name}() and never checks the response's status "
                "(status_code, ok or raise_for_status)",
                (item,),
            )
        )


def _py_lists(src: _Source, out: _FileFacts) -> None:
    """A query that loads every row (``X.objects.all()``, ``session.query(X).all()``,
    ``session.scalars(select(X)).all()``, ``X.objects.filter(...)``) in a function that
    neither slices nor paginates it, and returns it or loops over it."""
    for call in src.nodes("call"):
        function = call.child_by_field_name("function")
        if function is None or function.type != "attribute":
            continue
        method = node_text(function.child_by_field_name("attribute"))
        chain = node_text(function.child_by_field_name("object"))
        if not (
            (method == "all" and any(k in chain for k in (".objects", ".query(", "scalars(")))
            or (method == "filter" and chain.endswith(".objects"))
        ):
            continue
        if any(word in chain for word in (".limit(", ".offset(", ".paginate(", ".slice(")):
            continue
        scope = _function_of(call, _PY_FUNCTIONS)
        if scope is None or _py_pages(scope):
            continue
        parent = call.parent
        name = None
        if parent is not None and parent.type == "assignment":
            name = node_text(parent.child_by_field_name("left"))
        used = _py_use(scope, call, name)
        item = src.evidence(call)
        if used is None or item is None:
            continue
        use = src.evidence(used)
        symbol = _name_of(scope)
        out.facts.append(
            Fact(
                FactKind.UNPAGED_LIST,
                src.rel,
                symbol,
                f"`{symbol}` in {src.rel} loads every row ({node_text(call)[:60]}) with no limit, "
                "slice or paginator, and hands all of them on",
                (item, use) if use is not None and use != item else (item,),
            )
        )


_RENDER_CALLS = frozenset(
    {"render", "render_template", "TemplateResponse", "render_to_response", "render_to_string"}
)


def _py_templates(src: _Source, out: _FileFacts) -> None:
    """The templates a view renders: a string literal ending in ``.html`` handed to
    ``render(request, "app/list.html")``, ``render_template("list.html")``,
    ``TemplateResponse(…)`` (read later from a ``templates/`` folder, ``_template_paths``)."""
    for call in src.nodes("call"):
        function = call.child_by_field_name("function")
        if function is not None and function.type == "attribute":
            function = function.child_by_field_name("attribute")
        arguments = call.child_by_field_name("arguments")
        if node_text(function) not in _RENDER_CALLS or arguments is None:
            continue
        for argument in arguments.named_children:
            if argument.type == "keyword_argument":
                argument = argument.child_by_field_name("value") or argument
            if argument.type != "string" or any(
                part.type == "interpolation" for part in argument.named_children
            ):
                continue
            name = "".join(
                node_text(part) for part in argument.named_children if part.type == "string_content"
            )
            if name.endswith(".html") and name not in out.templates:
                out.templates.append(name)


def _py_pages(scope: Node) -> bool:
    """The function slices something, or names a page, limit, offset or cursor."""
    for node in descendants(scope):
        if node.type == "slice":
            return True
        if node.type == "identifier" and _PAGING.search(node_text(node)):
            return True
    return False


def _py_use(scope: Node, call: Node, name: str | None) -> Node | None:
    """Where the rows leave the function: returned, looped over, or passed to a call."""
    if call.parent is not None and call.parent.type in ("return_statement", "for_statement"):
        return call.parent
    if not name:
        return None
    for node in descendants(scope):
        if node.type == "return_statement" and any(
            part.type == "identifier" and node_text(part) == name for part in descendants(node)
        ):
            return node
        if node.type == "for_statement" and node_text(node.child_by_field_name("right")) == name:
            return node
    return None


def _py_checks(scope: Node, response: str | None) -> bool:
    for node in descendants(scope):
        if node.type == "attribute" and node_text(node.child_by_field_name("attribute")) in _CHECKS:
            return True
        if (
            response
            and node.type == "argument_list"
            and any(node_text(arg) == response for arg in node.named_children)
        ):
            return True
    return False


# -- Vue and Svelte components ------------------------------------------------------------


def _component_facts(rel: str, lines: list[str], dialect: str, text: str, out: _FileFacts) -> None:
    """A .vue/.svelte file: its script blocks read as TypeScript, its ``<style>`` blocks as
    CSS, its template as HTML (Vue) or Svelte; one grid verdict for the whole component."""
    template = _Source(rel, lines, _TEMPLATE_GRAMMAR[dialect], text, 0)
    root = template.tree.root_node
    grid = _Grid()
    scripts: list[_Source] = []
    for block in sfc.blocks(root):
        source = _Source(rel, lines, block.language, block.code, block.row)
        if block.language == "css":
            _css_grid(source, grid)
            _todos(source, out)
        else:
            scripts.append(source)
            _js_facts(source, out, grid)
    _todos(template, out)  # <!-- TODO --> (the blocks' text is not parsed by this grammar)
    elements = sfc.elements(root)
    _template_inputs(template, elements, out)
    _template_grid(template, elements, grid)
    _grid_fact(rel, grid, out)
    _template_lists(template, scripts, sfc.loops(root), dialect, out)


def _html_template_facts(rel: str, lines: list[str], text: str, out: _FileFacts) -> None:
    """A server-rendered template (Django, Jinja): its form controls, by the rules of a
    component's template. A ``{{ form.field }}`` is text to this grammar (no element, no
    claim); an element with a template tag among its attributes (``{% if %}``) may get its
    label from it, and is not claimed."""
    template = _Source(rel, lines, "html", text, 0)
    elements = [
        dataclasses.replace(element, spread=True)
        if any("{" in name for name in element.attributes)
        else element
        for element in sfc.elements(template.tree.root_node)
    ]
    _template_inputs(template, elements, out)


def _template_inputs(template: _Source, elements: list[sfc.Element], out: _FileFacts) -> None:
    """``_inputs`` for a template: the same rules, with Vue's and Svelte's ways of binding
    an attribute (``:aria-label``, ``aria-label={x}``, ``{title}``) counting as written."""
    label_for = {
        (named.bound, named.value)
        for element in elements
        if element.tag == "label"
        for key in ("for", "htmlFor")
        if (named := element.attributes.get(key)) is not None
    }
    items: list[Evidence] = []
    tags: list[str] = []
    for element in elements:
        if element.tag not in ("input", "select", "textarea") or element.spread:
            continue  # spread attributes may hold the label: not claimed
        attributes = element.attributes
        kind = attributes.get("type")
        if kind is not None and (kind.bound or kind.value in _NO_LABEL_TYPES):
            continue  # hidden, a button, or a type chosen at run time
        if _LABELLING & attributes.keys() or element.inside("label"):
            continue
        shown = attributes.get("v-show")
        if "hidden" in attributes or (shown is not None and shown.value.strip() == "false"):
            continue  # not shown: nothing to label
        if _template_hidden(template, attributes):
            continue
        named_id = attributes.get("id")
        if named_id is not None and (named_id.bound, named_id.value) in label_for:
            continue
        item = template.span(element.node)
        if item is not None and item not in items:
            items.append(item)
            tags.append(f"<{element.tag}>")
    if items:
        listed = ", ".join(dict.fromkeys(tags))
        out.facts.append(
            Fact(
                FactKind.UNLABELLED_INPUT,
                template.rel,
                None,
                f"{template.rel} has {len(items)} form control(s) ({listed}) with no label: "
                "no aria-label, no <label for> naming its id, and no enclosing <label>",
                tuple(items[:5]),
                note=listed,
            )
        )


_HIDING_CLASSES = frozenset({"hidden", "sr-only", "invisible"})


def _template_hidden(template: _Source, attributes: dict[str, sfc.Attribute]) -> bool:
    """A ``hidden``/``sr-only`` class, or a ``style`` with ``display: none`` or
    ``visibility: hidden`` (written out: a bound one is not known here)."""
    classes = attributes.get("class")
    if classes is not None and not classes.bound and _HIDING_CLASSES & set(classes.value.split()):
        return True
    style = attributes.get("style")
    if style is None or style.bound:
        return False
    rule = _Source(template.rel, template.lines, "css", f"a{{{style.value}}}", style.row)
    for declaration in rule.nodes("declaration"):
        parts = [node_text(part) for part in declaration.named_children]
        if parts in (["display", "none"], ["visibility", "hidden"]):
            return True
    return False


def _template_grid(template: _Source, elements: list[sfc.Element], grid: _Grid) -> None:
    """Grid columns in ``class``/``:class``/``class={…}``/``class:x``, ``style``/``:style``
    and ``style:grid-template-columns``; ``bind:innerWidth`` is responsive."""
    for element in elements:
        for name, attribute in element.attributes.items():
            if name == "bind:innerWidth":
                grid.responsive = True
            elif name.startswith("class:"):
                grid.classes(template, attribute.node, name.removeprefix("class:"))
            elif name == "style:grid-template-columns":
                if not attribute.bound and not _free_columns(attribute.value):
                    shown = f"grid-template-columns: {attribute.value}"
                    grid.add(template, attribute.node, shown)
            elif name in ("class", "style"):
                for code, row in attribute.expressions():
                    expression = _Source(template.rel, template.lines, "tsx", f"({code})", row)
                    _js_grid(expression, grid)
                if attribute.bound:
                    continue
                if name == "class":
                    grid.classes(template, attribute.node, attribute.value)
                else:
                    rule = f"a{{{attribute.value}}}"  # a rule around the declarations
                    _css_grid(
                        _Source(template.rel, template.lines, "css", rule, attribute.row), grid
                    )


def _free_columns(value: str) -> bool:
    """Columns that follow the width (auto-fit/fill, minmax) or are not known here."""
    return bool(_FREE_GRID.search(value)) or "var(" in value or value.strip() in _NOT_FIXED


_NOT_FIXED = frozenset({"none", "subgrid", "inherit", "initial", "unset", "revert"})
_RESPONSIVE_AT_RULES = frozenset({"@container", "@screen", "@include"})  # a mixin may hold one


def _css_grid(src: _Source, grid: _Grid) -> None:
    """``grid-template-columns`` and ``@apply grid-cols-N`` in a stylesheet; a media or
    container query (or a SCSS mixin, which may hold one) makes it responsive."""
    if src.nodes("media_statement"):
        grid.responsive = True
    for rule in src.nodes("at_rule"):
        keyword = next((c for c in rule.children if c.type == "at_keyword"), None)
        if node_text(keyword) in _RESPONSIVE_AT_RULES:
            grid.responsive = True
    for statement in src.nodes("postcss_statement"):
        keyword = next((c for c in statement.children if c.type == "at_keyword"), None)
        if node_text(keyword) == "@apply":
            words = " ".join(node_text(c) for c in statement.named_children if c != keyword)
            grid.classes(src, statement, words)
    for declaration in src.nodes("declaration"):
        name = declaration.named_children[0] if declaration.named_children else None
        if name is None or name.type != "property_name":
            continue
        if node_text(name) != "grid-template-columns":
            continue
        value = " ".join(node_text(part) for part in declaration.named_children[1:])
        if not _free_columns(value):
            grid.add(src, declaration, f"grid-template-columns: {value}")


def _template_lists(
    template: _Source, scripts: list[_Source], loops: list[sfc.Loop], dialect: str, out: _FileFacts
) -> None:
    """A list that a script block loads without paging (``_unpaged``) and that the template
    renders item by item (``v-for``, ``{#each}``): through the variables that hold the
    call's result. A loop over what another file's function loads is left to
    ``_cross_file_lists`` (``out.renders``), as is SvelteKit's ``data`` from ``load``."""
    if not loops:
        return
    fed: dict[str, tuple[_Source, Node]] = {}  # variable -> the unpaged call it holds
    called: dict[str, str] = {}  # variable -> the function whose awaited result it holds
    for src in scripts:
        cache: dict[int, list[_Binding]] = {}
        for call in src.nodes("call_expression"):
            unpaged = _unpaged(call)
            if not unpaged and not _awaited(call):
                continue
            for name in _fed_names(src, call, cache):
                if unpaged:
                    fed.setdefault(name, (src, call))
                else:
                    called.setdefault(name, _call_name(call))
    for loop in loops:
        if _pages_itself(loop.iterable):
            continue
        name = _iterable_root(loop.iterable)
        item = template.evidence(loop.node)
        if not name or item is None:
            continue
        if name in fed and not any(f.kind is FactKind.UNPAGED_LIST for f in out.facts):
            src, call = fed[name]
            loaded = src.evidence(call)
            if loaded is None:
                continue
            out.facts.append(
                Fact(
                    FactKind.UNPAGED_LIST,
                    template.rel,
                    None,
                    f"{template.rel} loads a list with no page, limit or cursor (line "
                    f"{loaded.start_line}) and renders every item with {loop.syntax} "
                    f"(line {item.start_line})",
                    (loaded, item),
                )
            )
        elif name in called:
            out.renders.append((called[name], item))
        elif dialect == "svelte" and name == "data":
            out.renders.append((_SVELTEKIT_LOAD, item))  # the route's +page.ts / .server.ts


_SVELTEKIT_LOAD = "load"


def _awaited(call: Node) -> bool:
    parent = call.parent
    return (parent is not None and parent.type == "await_expression") or "then" in _chain(call)[1]


def _fed_names(src: _Source, call: Node, cache: dict[int, list[_Binding]]) -> set[str]:
    """The variables that hold the call's result, or something made from it, in the
    function that makes the call: ``const res = await fetch(u)``, then
    ``rows.value = await res.json()`` (Vue's ref), ``this.rows = …`` (options API),
    ``rows = …`` (Svelte), ``const { data: rows } = await useFetch(u)``, and the
    parameters of the callbacks chained on it (``.then((rows) => …)``). ``cache`` keeps
    each function's bindings."""
    scope = _function_of(call, _JS_FUNCTIONS) or src.tree.root_node
    bindings = cache.get(scope.id)
    if bindings is None:
        bindings = cache[scope.id] = _bindings(scope)
    derived = _callback_parameters(call)
    changed = True
    while changed:
        changed = False
        for names, uses, start, end in bindings:
            holds = start <= call.start_byte and call.end_byte <= end
            if (holds or not uses.isdisjoint(derived)) and not derived.issuperset(names):
                derived.update(names)
                changed = True
    return derived


_Binding = tuple[list[str], set[str], int, int]  # names bound, names used, value's bytes


def _bindings(scope: Node) -> list[_Binding]:
    """The declarations and assignments in ``scope``: what each binds, from what."""
    found: list[_Binding] = []
    for node in descendants(scope):
        if node.type == "variable_declarator":
            target, value = node.child_by_field_name("name"), node.child_by_field_name("value")
        elif node.type == "assignment_expression":
            target, value = node.child_by_field_name("left"), node.child_by_field_name("right")
        else:
            continue
        if target is None or value is None:
            continue
        names = _bound_names(target)
        if names:
            uses = {
                node_text(part)
                for part in (value, *descendants(value))
                if part.type == "identifier"
            }
            found.append((names, uses, value.start_byte, value.end_byte))
    return found


def _bound_names(target: Node) -> list[str]:
    """``rows`` of ``rows``, ``rows.value``, ``this.rows``, ``state.rows``, and the
    variables of a destructuring pattern."""
    if target.type == "identifier":
        return [node_text(target)]
    if target.type == "member_expression":
        current = target
        while True:
            inner = current.child_by_field_name("object")
            if inner is None:
                return []
            if inner.type == "this":
                return [node_text(current.child_by_field_name("property"))]
            if inner.type != "member_expression":
                return [node_text(inner)] if inner.type == "identifier" else []
            current = inner
    if target.type in ("object_pattern", "array_pattern"):
        names: list[str] = []
        stack = [target]
        while stack:  # not the keys (``data`` of ``data: rows``) nor the defaults (``= []``)
            node = stack.pop()
            if node.type in ("identifier", "shorthand_property_identifier_pattern"):
                names.append(node_text(node))
            elif node.type == "pair_pattern":
                stack.extend(n for n in [node.child_by_field_name("value")] if n is not None)
            elif node.type in ("assignment_pattern", "object_assignment_pattern"):
                stack.extend(n for n in [node.child_by_field_name("left")] if n is not None)
            else:
                stack.extend(reversed(node.named_children))
        return names
    return []


def _callback_parameters(call: Node) -> set[str]:
    """The parameters of the functions handed to the calls chained on ``call``."""
    names: set[str] = set()
    current = call
    while True:
        member = current.parent
        outer = member.parent if member is not None else None
        if member is None or member.type != "member_expression" or outer is None:
            return names
        if outer.type != "call_expression" or member.child_by_field_name("object") != current:
            return names
        arguments = outer.child_by_field_name("arguments")
        for argument in arguments.named_children if arguments is not None else ():
            if argument.type not in _JS_FUNCTIONS:
                continue
            parameters = argument.child_by_field_name("parameters") or argument.child_by_field_name(
                "parameter"
            )
            if parameters is not None:
                names.update(
                    node_text(node)
                    for node in (parameters, *descendants(parameters))
                    if node.type in ("identifier", "shorthand_property_identifier_pattern")
                )
        current = outer


def _iterable_root(node: Node) -> str:
    """``items`` of ``items``, ``items.filter(f)``, ``data.items``, ``items!``."""
    current: Node | None = node
    while current is not None:
        if current.type == "identifier":
            return node_text(current)
        if current.type == "call_expression":
            current = current.child_by_field_name("function")
        elif current.type in ("member_expression", "subscript_expression"):
            current = current.child_by_field_name("object")
        elif current.type in ("parenthesized_expression", "non_null_expression"):
            current = current.named_children[0] if current.named_children else None
        else:
            return ""
    return ""


def _pages_itself(iterable: Node) -> bool:
    """The loop shows a slice (``items.slice(0, 20)``) or a page of its own."""
    for node in (iterable, *descendants(iterable)):
        if node.type == "call_expression" and _method(node) in _PAGING_METHODS:
            return True
        if node.type == "identifier" and _PAGING.search(node_text(node)):
            return True
    return False


def _analyse(rel: str, text: str) -> _FileFacts:
    out = _FileFacts()
    language = language_of(rel)
    lines = text.split("\n")
    if language == "vue":
        _component_facts(rel, lines, _dialect(rel), text, out)
    elif _is_template(rel):
        _html_template_facts(rel, lines, text, out)
    elif language == "python":
        _py_facts(_Source(rel, lines, "python", text, 0), out)
    elif language is not None:
        _js_facts(_Source(rel, lines, language, text, 0), out)
    return out


# -- across the page's files ------------------------------------------------------------------

_ROUTE_PAGE = re.compile(r"(?:^|/)app/(?:.*/)?page\.(?:tsx|jsx|ts|js|mdx)$")
_NEXT_SPECIAL = frozenset({"page", "layout", "loading", "error", "route", "template",
                           "not-found", "default", "global-error"})  # fmt: skip
_RULE_WORDS = re.compile(r"\b(every|each|all|must|should|need|needs|require[sd]?|always)\b")


def find_facts(
    root: Path | str, own: Sequence[str], *, others: Sequence[str] = (), nearby: bool = True
) -> FactReport:
    """The facts of the page's files ``own`` (relative paths, best first), then of
    ``others`` (files about it that are not its own: another page named alike, a file named
    for it) and of the files near its route folder (when ``nearby``). Blocking I/O."""
    started = time.perf_counter()
    sandbox = Sandbox(root)
    report = FactReport()
    per_file: dict[str, _FileFacts] = {}
    own_paths = [rel for rel in dict.fromkeys(own) if language_of(rel)]
    taken = set(own_paths)
    other_paths = [rel for rel in dict.fromkeys(others) if language_of(rel) and rel not in taken]
    taken.update(other_paths)
    near = [rel for rel in _nearby(sandbox, own_paths) if rel not in taken] if nearby else []
    for rel in [*own_paths, *other_paths, *near]:
        text = _read(sandbox, rel)
        if text is None:
            continue
        report.files_read.append(rel)
        per_file[rel] = _analyse(rel, text)
    own_set = set(own_paths)
    for rel, view in _template_paths(sandbox, per_file, taken):  # the views' templates
        text = _read(sandbox, rel)
        if text is not None:
            report.files_read.append(rel)
            per_file[rel] = _analyse(rel, text)
            if view in own_set:
                own_set.add(rel)  # a page's own view renders it: the page's own
    for rel, found in per_file.items():
        for fact in found.facts:
            report.facts.append(_placed(fact, rel in own_set))
    _cross_file_lists(per_file, own_set, report)
    for rel in per_file:
        state = _route_states(sandbox, rel, per_file)
        if state is not None:
            report.facts.append(_placed(state, rel in own_set))
    report.facts.extend(_rule_breaks(sandbox, per_file, own_set))
    report.seconds = time.perf_counter() - started
    return report


MAX_TEMPLATES = 10  # templates read for the views of the files read


def _is_template(rel: str) -> bool:
    return rel.lower().endswith(".html")


def _template_paths(
    sandbox: Sandbox, per_file: dict[str, _FileFacts], taken: set[str]
) -> list[tuple[str, str]]:
    """(template, view) for the templates the Python views read render, each found in the
    ``templates/`` folder nearest the view (an app's own, then the project's), as Django's
    app directories and Flask's package folder hold them; none twice, none already read."""
    found: list[tuple[str, str]] = []
    for view, facts in per_file.items():
        for name in facts.templates:
            folder = posixpath.dirname(view)
            while True:
                rel = posixpath.normpath(posixpath.join(folder, "templates", name))
                inside = not (posixpath.isabs(rel) or rel.startswith("../"))
                if inside and _exists(sandbox, rel):
                    if rel not in taken:
                        taken.add(rel)
                        found.append((rel, view))
                    break
                if not folder:
                    break
                folder = posixpath.dirname(folder)
            if len(found) >= MAX_TEMPLATES:
                return found
    return found


def _placed(fact: Fact, own: bool) -> Fact:
    return fact if fact.own == own else dataclasses.replace(fact, own=own)


def _read(sandbox: Sandbox, rel: str) -> str | None:
    try:
        location = sandbox.resolve(rel)
        if location.is_dir:
            return None
        return sandbox.read_text(location, MAX_FILE_BYTES)
    except (OSError, SandboxError):
        return None


def _exists(sandbox: Sandbox, rel: str) -> bool:
    try:
        return os.path.isfile(os.path.join(sandbox.root, rel)) and sandbox.admit(rel) is not None
    except (OSError, SandboxError):
        return False


def _nearby(sandbox: Sandbox, own: Sequence[str]) -> list[str]:
    """Code files in the route folders of the page's files and their private subfolders
    (``_components``…), never another route's folder; not already ``own``."""
    folders = [posixpath.dirname(rel) for rel in own if _is_route_file(rel)]
    found: list[str] = []
    taken = set(own)
    entries = 0
    for folder in dict.fromkeys(folders):
        base = os.path.join(sandbox.root, folder)
        for current, dirs, files in os.walk(base):
            entries += len(dirs) + len(files)
            if entries > MAX_NEARBY_ENTRIES:
                return found  # a huge folder: what was found so far
            here = posixpath.relpath(current, sandbox.root).replace(os.sep, "/")
            here = "" if here == "." else here
            dirs[:] = sorted(
                d
                for d in dirs
                if not d.startswith((".", "node_modules"))
                and not _holds_route(os.path.join(current, d), posixpath.join(here, d))
            )
            for name in sorted(files):
                rel = posixpath.join(here, name)
                if rel in taken or not name.endswith(_CODE_SUFFIXES) or _is_test(rel):
                    continue
                if sandbox.admit(rel) is None:
                    continue
                taken.add(rel)
                found.append(rel)
                if len(found) >= MAX_NEARBY:
                    return found
    return found


def _holds_route(path: str, rel: str) -> bool:
    """The folder is a route of its own (another page), or cannot be listed."""
    try:
        return any(_is_route_file(posixpath.join(rel, name)) for name in os.listdir(path))
    except OSError:
        return True


def _is_route_file(rel: str) -> bool:
    stem = posixpath.splitext(posixpath.basename(rel))[0]
    if _ROUTE_PAGE.search(rel) or stem == "+page" or posixpath.basename(rel) == "views.py":
        return True
    return stem == "index" and "/pages/" in f"/{rel}"


def _is_test(rel: str) -> bool:
    name = posixpath.basename(rel)
    return ".test." in name or ".spec." in name or "__tests__" in rel or name.startswith("test_")


def _cross_file_lists(per_file: dict[str, _FileFacts], own: set[str], report: FactReport) -> None:
    """A list rendered in one file from a loader function in another that does not page."""
    loaders = {
        name: item
        for rel, found in per_file.items()
        for name, item in found.loaders.items()
        if not any(f.kind is FactKind.UNPAGED_LIST for f in found.facts)
    }
    for rel, found in per_file.items():
        for callee, render in found.renders:
            base = callee.rsplit(".", 1)[-1]
            loader = loaders.get(base)
            if loader is None or loader.path == rel:
                continue
            if callee == _SVELTEKIT_LOAD and posixpath.dirname(loader.path) != posixpath.dirname(
                rel
            ):
                continue  # every SvelteKit route has a `load`: only the page's own counts
            report.facts.append(
                Fact(
                    FactKind.UNPAGED_LIST,
                    rel,
                    base,
                    f"{rel} renders every item that `{base}` ({loader.path}) loads, and "
                    "that call has no page, limit or cursor",
                    (render, loader),
                    own=rel in own,
                )
            )
            break


def _route_states(sandbox: Sandbox, rel: str, per_file: dict[str, _FileFacts]) -> Fact | None:
    """A Next.js page with no ``loading`` (resp. ``error``) file beside it or in a parent
    segment, and no ``<Suspense fallback>`` (resp. error boundary) in the page or around a
    layout's ``children`` on the way up: a state nothing in the code provides."""
    if not _ROUTE_PAGE.search(rel):
        return None
    folder = posixpath.dirname(rel)
    page = per_file[rel]
    shown = page.boundaries or _Boundaries()
    covered = {"loading": shown.suspense, "error": shown.error}
    present = {"loading": False, "error": False}
    here = folder
    while True:
        for state in present:
            if not present[state] and any(
                _exists(sandbox, f"{here}/{state}.{ext}") for ext in ("tsx", "jsx", "js", "ts")
            ):
                present[state] = True
        layout = _layout_boundaries(sandbox, here)
        covered["loading"] = covered["loading"] or layout.suspense
        covered["error"] = covered["error"] or layout.error
        if posixpath.basename(here) == "app" or not here:
            break
        here = posixpath.dirname(here)
    missing = [state for state in ("loading", "error") if not present[state]]
    missing = [state for state in missing if not covered[state]]
    if not missing:
        return None
    exported = next((item for name, item in page.components if "default" in item.quote), None)
    if exported is None:
        exported = next((item for _, item in page.components), None)
    if exported is None:
        return None
    files = " or ".join(f"{state}.tsx" for state in missing)
    boundaries = " or ".join(
        {"loading": "<Suspense fallback>", "error": "error boundary"}[state] for state in missing
    )
    effects = []
    if "loading" in missing:
        effects.append("a visitor gets no feedback while it renders")
    if "error" in missing:
        effects.append("a failure shows Next.js's generic error page")
    loaded = page.data_call or _imported_data_call(rel, per_file)
    loads = page.loads_data or loaded is not None
    evidence = (exported,) if loaded is None or loaded == exported else (exported, loaded)
    return Fact(
        FactKind.MISSING_ROUTE_STATE,
        rel,
        None,
        f"the route {rel} has no {files} beside it or in a parent segment, and no "
        f"{boundaries} in the page or its layouts, so "
        + " and ".join(effects)
        + ("" if loads else " (it loads no data yet, so this matters once it does)"),
        evidence,
        note=" and ".join(missing),
        minor=not loads,
    )


_MAX_IMPORT_DEPTH = 3  # the page's imports, theirs, and theirs: a component's data hook


def _imported_data_call(rel: str, per_file: dict[str, _FileFacts]) -> Evidence | None:
    """The first query hook or prefetch in the files the page imports, to
    ``_MAX_IMPORT_DEPTH`` (among the files read), breadth first."""
    read = per_file.keys()
    seen = {rel}
    level = [rel]
    for _ in range(_MAX_IMPORT_DEPTH):
        following: list[str] = []
        for importer in level:
            for specifier in per_file[importer].imports:
                target = resolve_import(importer, specifier, read)
                if target is None or target in seen:
                    continue
                seen.add(target)
                following.append(target)
                if per_file[target].data_call is not None:
                    return per_file[target].data_call
        level = following
    return None


def _layout_boundaries(sandbox: Sandbox, folder: str) -> _Boundaries:
    """The boundaries around ``children`` in the layout of ``folder``, if it has one."""
    for ext in ("tsx", "jsx", "js"):
        rel = f"{folder}/layout.{ext}" if folder else f"layout.{ext}"
        if not _exists(sandbox, rel):
            continue
        text = _read(sandbox, rel)
        if text is None:
            return _Boundaries()
        src = _Source(rel, text.split("\n"), "tsx", text, 0)
        return _boundaries(src.tree.root_node, around_children=True)
    return _Boundaries()


def _rule_breaks(sandbox: Sandbox, per_file: dict[str, _FileFacts], own: set[str]) -> list[Fact]:
    rule = _test_rule(sandbox)
    if rule is None:
        return []
    facts: list[Fact] = []
    for rel, found in per_file.items():
        stem, suffix = posixpath.splitext(posixpath.basename(rel))
        if stem in _NEXT_SPECIAL or suffix not in (".tsx", ".jsx") or _is_test(rel):
            continue
        if not found.components:
            continue
        folder = posixpath.dirname(rel)
        names = dict.fromkeys([stem, *(name for name, _ in found.components)])
        candidates = [
            posixpath.join(folder, sub, f"{name}.{kind}.{ext}")
            for name in names
            for sub in ("", "__tests__")
            for kind in ("test", "spec")
            for ext in ("tsx", "ts", "jsx", "js")
        ]
        if any(_exists(sandbox, candidate) for candidate in candidates):
            continue
        name, item = found.components[0]
        facts.append(
            Fact(
                FactKind.UNTESTED_COMPONENT,
                rel,
                name,
                f"{rule.path} asks for a test for every component, and `{name}` ({rel}) has "
                f"no {stem}.test{suffix} beside it",
                (item, rule),
                own=rel in own,
                note=rule.quote,
            )
        )
    return facts


def _test_rule(sandbox: Sandbox) -> Evidence | None:
    for doc in RULE_DOCS:
        text = _read(sandbox, doc)
        if text is None:
            continue
        for number, line in enumerate(text.split("\n"), start=1):
            lowered = line.lower()
            if "test" in lowered and "component" in lowered and _RULE_WORDS.search(lowered):
                quote = " ".join(line.split())[:MAX_QUOTE]
                if quote:
                    return Evidence(path=doc, start_line=number, end_line=number, quote=quote)
    return None

"""Vue and Svelte single-file components read as syntax trees: their blocks, the elements
and loops of their template, with the rows where each is in the file.

A .vue file is parsed with the HTML grammar (a Vue template is HTML with ``{{ }}`` text and
``v-``/``:``/``@`` attributes; the grammar reads them as ordinary attributes), a .svelte file
with Svelte's own (its ``{#each}`` blocks, ``{expression}`` values, ``{...props}``), each
whole, so that every node's row is the row in the file. The ``<script>`` and ``<style>``
blocks are raw text in those trees: ``blocks`` hands them on with the row where their text
starts, for the TypeScript and CSS grammars. Measured on 152 .vue files of two public apps
and 24 .svelte files of SvelteKit's RealWorld: the HTML grammar parses every .vue file
without an error node but 10 of the .svelte files with one; Svelte's grammar parses every
.svelte file cleanly.

``agent.facts`` draws its facts from these; nothing here judges the code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import tree_sitter_css
import tree_sitter_html
import tree_sitter_svelte
import tree_sitter_typescript
from tree_sitter import Language, Node, Parser

from .syntax import node_text

__all__ = [
    "Attribute",
    "Block",
    "Element",
    "Loop",
    "blocks",
    "elements",
    "grammar",
    "loops",
    "template_comments",
]

_TAGS = frozenset({"start_tag", "self_closing_tag"})
_BLOCKS = frozenset({"script_element", "style_element"})


@cache
def grammar(name: str) -> Language:
    """``html`` (for .vue), ``svelte`` or ``css``."""
    if name == "html":
        return Language(tree_sitter_html.language())
    if name == "svelte":
        return Language(tree_sitter_svelte.language())
    if name == "css":
        return Language(tree_sitter_css.language())
    raise ValueError(f"no template grammar {name!r}")


@cache
def _expression_grammar() -> Language:
    return Language(tree_sitter_typescript.language_tsx())


@dataclass(frozen=True, slots=True)
class Block:
    """A ``<script>`` or ``<style>`` block: its grammar and its text from ``row`` (0-based,
    the row of the file where the text starts, right after the opening tag)."""

    language: str  # "typescript", "tsx" (JavaScript too), or "css"
    row: int
    code: str


def blocks(root: Node) -> Iterator[Block]:
    """The script and style blocks at the top of a component (not those of a nested
    ``<svelte:head>`` or ``<template>``: those are content)."""
    for child in root.children:
        if child.type not in _BLOCKS:
            continue
        raw = next((c for c in child.children if c.type == "raw_text"), None)
        if raw is None:
            continue  # an empty block
        lang = _lang(child)
        if child.type == "style_element":
            if lang in ("", "css", "postcss", "scss", "less"):
                yield Block("css", raw.start_point.row, node_text(raw))
        elif lang in ("ts", "typescript"):
            yield Block("typescript", raw.start_point.row, node_text(raw))
        elif lang in ("", "js", "javascript", "jsx", "tsx"):
            yield Block("tsx", raw.start_point.row, node_text(raw))


def _lang(block: Node) -> str:
    tag = next((c for c in block.children if c.type == "start_tag"), None)
    for attribute in tag.named_children if tag is not None else ():
        parts = attribute.named_children
        if parts and node_text(parts[0]) == "lang" and len(parts) > 1:
            return _literal(parts[1]).lower()
    return ""


def _literal(value: Node) -> str:
    """An attribute value's text without its quotes."""
    if value.type == "quoted_attribute_value":
        inner = next((c for c in value.named_children if c.type == "attribute_value"), None)
        return node_text(inner)
    return node_text(value)


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute as the element gets it: ``:id="x"``, ``v-bind:id="x"`` and Svelte's
    ``id={x}`` and ``{id}`` are all ``id``, bound to an expression."""

    name: str
    value: str  # the literal, or the expression's source when ``bound``
    bound: bool
    node: Node  # the attribute
    row: int  # the row of the file where ``value`` starts

    def expressions(self) -> list[tuple[str, int]]:
        """The source and first row of each expression in the value: the value when it is
        bound, else the ``{…}`` inside a Svelte string (``class="grid {extra}"``)."""
        if self.bound:
            return [(self.value, self.row)]
        return [
            (node_text(raw), raw.start_point.row)
            for node in _walk(self.node)
            if node.type == "expression"
            for raw in node.named_children
            if raw.type == "svelte_raw_text"
        ]


@dataclass(frozen=True, slots=True)
class Element:
    """A template element: its tag (``start_tag`` or ``self_closing_tag``) and attributes.
    ``spread`` when some attributes are not written out (``v-bind="obj"``, ``{...props}``)."""

    tag: str
    node: Node
    attributes: dict[str, Attribute]
    spread: bool

    def inside(self, tag: str) -> bool:
        """Some element around this one is a ``<tag>``."""
        element = self.node.parent  # the element this tag opens
        parent = element.parent if element is not None else None
        while parent is not None:
            if parent.type == "element":
                opening = parent.children[0] if parent.children else None
                if opening is not None and opening.type in _TAGS and _tag_name(opening) == tag:
                    return True
            parent = parent.parent
        return False


def _tag_name(tag: Node) -> str:
    name = next((c for c in tag.named_children if c.type == "tag_name"), None)
    return node_text(name)


def elements(root: Node) -> list[Element]:
    """Every element of the template, in the order of the file."""
    found: list[Element] = []
    for tag in _walk(root):
        if tag.type not in _TAGS:
            continue
        attributes: dict[str, Attribute] = {}
        spread = False
        for attribute in tag.named_children:
            if attribute.type != "attribute" or not attribute.named_children:
                continue
            read = _attribute(attribute)
            if read is None:
                spread = True
            else:
                attributes.setdefault(read.name, read)
        found.append(Element(_tag_name(tag), tag, attributes, spread))
    return found


def _attribute(attribute: Node) -> Attribute | None:
    """The attribute as the element gets it, or None for a spread of unknown attributes."""
    name_node, *rest = attribute.named_children
    value = rest[0] if rest else None
    shorthand = next((c for c in name_node.children if c.type == "svelte_raw_text"), None)
    if shorthand is not None:  # Svelte: {...props} or {id}
        source = node_text(shorthand).strip()
        if source.startswith("..."):
            return None
        return Attribute(source, source, True, attribute, shorthand.start_point.row)
    name = node_text(name_node)
    if name == "v-bind":
        return None  # v-bind="obj": every key of obj
    bound = False
    for prefix in ("v-bind:", ":"):
        if name.startswith(prefix):
            name, bound = name[len(prefix) :].split(".")[0], True
            break
    if value is None:
        return Attribute(name, "", bound, attribute, attribute.start_point.row)
    inner = next(
        (c for c in value.named_children if c.type in ("svelte_raw_text", "attribute_value")),
        value,
    )
    if value.type == "expression":  # Svelte: name={…}
        return Attribute(name, node_text(inner), True, attribute, inner.start_point.row)
    return Attribute(name, _literal(value), bound, attribute, inner.start_point.row)


@dataclass(frozen=True, slots=True)
class Loop:
    """A list rendered item by item: ``v-for="item in items"`` or ``{#each items as item}``.
    ``iterable`` is the expression iterated (``items``), parsed as TypeScript; ``node`` is
    the attribute or the ``{#each …}`` opening (its row is the loop's)."""

    iterable: Node
    node: Node
    syntax: str  # "v-for" or "{#each}"


def loops(root: Node) -> list[Loop]:
    found: list[Loop] = []
    parser = Parser(_expression_grammar())
    for node in _walk(root):
        source: str | None = None
        syntax = ""
        if node.type == "attribute" and node.named_children:
            if node_text(node.named_children[0]) == "v-for" and len(node.named_children) > 1:
                source, syntax = f"for ({_literal(node.named_children[1])});", "v-for"
        elif node.type == "each_start":
            raw = next((c for c in node.children if c.type == "svelte_raw_text"), None)
            if raw is not None:
                source, syntax = f"({node_text(raw)});", "{#each}"
        if source is None:
            continue
        statement = parser.parse(source.encode("utf-8", errors="replace")).root_node
        head = statement.named_children[0] if statement.named_children else None
        if head is None:
            continue
        if head.type == "for_in_statement":
            iterable = head.child_by_field_name("right")
        else:  # ( items ); : the parenthesized expression
            inner = head.named_children[0] if head.named_children else None
            iterable = inner.named_children[0] if inner and inner.named_children else None
        if iterable is not None and not statement.has_error:
            found.append(Loop(iterable, node, syntax))
    return found


def template_comments(root: Node) -> list[Node]:
    """The template's ``<!-- … -->`` comments."""
    return [node for node in _walk(root) if node.type == "comment"]


def _walk(root: Node) -> Iterator[Node]:
    """The nodes of the template in the order of the file, not into script or style."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        if node.type not in _BLOCKS:
            stack.extend(reversed(node.children))

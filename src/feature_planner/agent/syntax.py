"""Walking tree-sitter syntax trees: a node's text, the nodes below it, the nodes above it.

Shared by everything that reads code as trees (``facts``, ``jsx_controls``, ``sfc``,
``repo_map``).
"""

from __future__ import annotations

from collections.abc import Iterator

from tree_sitter import Node

__all__ = ["ancestors", "descendants", "node_text", "walk"]


def node_text(node: Node | None) -> str:
    """The node's source text ("" for no node)."""
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", errors="replace")


def walk(node: Node) -> Iterator[Node]:
    """``node`` and every node below it, in the order of the file."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def descendants(node: Node) -> Iterator[Node]:
    """Every node below ``node`` (not itself), in no particular order."""
    stack = list(node.children)
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children)


def ancestors(node: Node) -> Iterator[Node]:
    """The nodes above ``node``, nearest first."""
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent

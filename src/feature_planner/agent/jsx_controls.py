"""The form controls of a JSX/TSX file that have no accessible name, read from its syntax tree.

A control is an ``<input>``, ``<select>`` or ``<textarea>``, or a design system's
``<Input>``, ``<Textarea>`` or ``<Select>`` imported from a UI package or folder (a
specifier with a ``ui`` segment: ``@acme/ui/input``, ``@/components/ui/input``). It has a
name when it has an ``aria-label``, ``aria-labelledby`` or ``title`` (a design system's
control also a ``label`` prop), when a ``<label>``/``<Label>`` of the file names its ``id``
(``htmlFor``/``for``), when a ``<label>``/``<Label>`` encloses it, or when it sits in a
``<FormItem>`` that holds a ``<FormLabel>`` (shadcn's form: ``<FormControl>`` gives the
control the id its ``<FormLabel>`` names); a ``<Select>`` also when its ``<SelectTrigger>``
has one of these.

Not claimed, because nothing is announced or the code does not show enough: a control that
is hidden (``type="hidden"``, the ``hidden`` attribute, ``aria-hidden``, a ``style`` with
``display: none`` or ``visibility: hidden``, a ``hidden``/``sr-only``/``invisible`` class),
a button-like type or one chosen at run time, and one whose props are spread
(``{...props}`` may hold the label) — except react-hook-form's ``{...field}`` from a
``render`` prop, which carries a value, handlers, a name and a ref, never a label.

``agent.facts`` turns what this finds into ``unlabelled-input`` facts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from tree_sitter import Node

from .syntax import ancestors, node_text, walk

__all__ = ["Control", "ui_imports", "unlabelled"]

_NATIVE = frozenset({"input", "select", "textarea"})
_KIT = frozenset({"Input", "Textarea", "Select", "NativeSelect"})
_LABELS = frozenset({"label", "Label"})
_NAMING = frozenset({"aria-label", "aria-labelledby", "title"})
_NO_LABEL_TYPES = frozenset({"hidden", "submit", "button", "reset", "image"})
_HIDING_CLASSES = frozenset({"hidden", "sr-only", "invisible"})
_CLASS_WORD = re.compile(r"\S+")
_OPENINGS = ("jsx_opening_element", "jsx_self_closing_element")


@dataclass(frozen=True, slots=True)
class Control:
    """An unlabelled control: its opening tag, its tag's name, and whether it is in a
    ``<FormItem>`` (whose missing ``<FormLabel>`` is then the thing to add)."""

    node: Node
    tag: str
    in_form_item: bool


def _tag(element: Node) -> str:
    """``Input`` of ``<Input …>``, ``Suspense`` of ``<React.Suspense>``."""
    name = element.child_by_field_name("name")
    if name is not None and name.type == "member_expression":
        return node_text(name.child_by_field_name("property"))
    return node_text(name)


def _opening(element: Node) -> Node | None:
    """The opening tag of a ``jsx_element`` (or the element itself when self-closing)."""
    if element.type == "jsx_self_closing_element":
        return element
    if element.type == "jsx_element" and element.named_children:
        first = element.named_children[0]
        return first if first.type == "jsx_opening_element" else None
    return None


def ui_imports(root: Node) -> dict[str, str]:
    """Local name -> imported name of what the file imports from a UI package or folder."""
    found: dict[str, str] = {}
    for statement in root.named_children:
        if statement.type != "import_statement":
            continue
        source = node_text(statement.child_by_field_name("source")).strip("'\"`")
        if "ui" not in source.split("/"):
            continue
        for node in walk(statement):
            if node.type == "import_specifier":
                name = node_text(node.child_by_field_name("name"))
                alias = node.child_by_field_name("alias")
                found[node_text(alias) if alias is not None else name] = name
            elif node.type == "import_clause":
                default = next((c for c in node.named_children if c.type == "identifier"), None)
                if default is not None:  # import Input from "@/components/ui/input"
                    found[node_text(default)] = node_text(default)
    return found


@dataclass(slots=True)
class _Props:
    values: dict[str, Node | None]  # name -> value node (None: written bare, ``hidden``)
    unknown: bool  # props spread that may hold a label


def _props(opening: Node) -> _Props:
    values: dict[str, Node | None] = {}
    unknown = False
    for child in opening.named_children:
        if child.type == "jsx_attribute" and child.named_children:
            name = node_text(child.named_children[0])
            values[name] = child.named_children[1] if len(child.named_children) > 1 else None
        elif child.type == "jsx_expression":
            spread = next((c for c in child.named_children if c.type == "spread_element"), None)
            if spread is None or not _field_spread(spread):
                unknown = True
    return _Props(values, unknown)


def _field_spread(spread: Node) -> bool:
    """``{...field}`` where ``field`` is a parameter of a function given as a ``render``
    prop (react-hook-form's ``FormField``/``Controller``)."""
    inner = spread.named_children[0] if spread.named_children else None
    if inner is None or inner.type != "identifier" or node_text(inner) != "field":
        return False
    for up in ancestors(spread):
        if up.type not in ("arrow_function", "function_expression"):
            continue
        parameters = up.child_by_field_name("parameters") or up.child_by_field_name("parameter")
        binds = parameters is not None and any(
            node.type == "shorthand_property_identifier_pattern" and node_text(node) == "field"
            for node in walk(parameters)
        )
        holder = up.parent
        attribute = holder.parent if holder is not None else None
        if binds and attribute is not None and attribute.type == "jsx_attribute":
            return node_text(attribute.named_children[0]) == "render"
        if binds:
            return False
    return False


def _literal(value: Node | None) -> str | None:
    """The text of a string value (``"x"`` or ``{"x"}``); None when it is computed."""
    if value is None:
        return None
    if value.type == "jsx_expression" and len(value.named_children) == 1:
        value = value.named_children[0]
    if value.type == "string":
        return "".join(node_text(c) for c in value.named_children if c.type == "string_fragment")
    if value.type == "template_string" and not any(
        c.type == "template_substitution" for c in value.named_children
    ):
        return "".join(node_text(c) for c in value.named_children if c.type == "string_fragment")
    return None


def _key(value: Node | None) -> str:
    """A value as written, for matching an ``id`` with a ``htmlFor`` (``"email"``, ``{id}``)."""
    literal = _literal(value)
    return literal if literal is not None else node_text(value)


def _false(value: Node | None) -> bool:
    """``{false}`` or ``"false"``: an attribute switched off."""
    if value is not None and value.type == "jsx_expression" and value.named_children:
        return value.named_children[0].type == "false"
    return _literal(value) == "false"


def _hidden(props: _Props) -> bool:
    values = props.values
    if "type" in values:
        literal = _literal(values["type"])
        if literal is None or literal in _NO_LABEL_TYPES:
            return True  # hidden, a button, or a type chosen at run time
    for name in ("hidden", "aria-hidden"):
        if name in values and not _false(values[name]):
            return True
    style = values.get("style")
    if style is not None:
        for pair in walk(style):
            if pair.type != "pair":
                continue
            key = node_text(pair.child_by_field_name("key")).strip("'\"")
            shown = _literal(pair.child_by_field_name("value"))
            if (key, shown) in (("display", "none"), ("visibility", "hidden")):
                return True
    classes = values.get("className", values.get("class"))
    if classes is not None:
        for fragment in walk(classes):
            if fragment.type == "string_fragment":
                words = set(_CLASS_WORD.findall(node_text(fragment)))
                if words & _HIDING_CLASSES:
                    return True
    return False


def _enclosing(opening: Node) -> Iterator[tuple[str, Node]]:
    """The tags (and elements) around a control, innermost first."""
    element = opening if opening.type == "jsx_self_closing_element" else opening.parent
    for up in ancestors(element) if element is not None else ():
        if up.type == "jsx_element":
            tag = _opening(up)
            if tag is not None:
                yield _tag(tag), up


def _holds(element: Node, tag: str) -> bool:
    return any(node.type in _OPENINGS and _tag(node) == tag for node in walk(element))


def unlabelled(root: Node) -> list[Control]:
    """The controls of the file (``root``: its program node) that have no accessible name,
    in the order of the file."""
    kit = {local: name for local, name in ui_imports(root).items() if name in _KIT}
    openings = [node for node in walk(root) if node.type in _OPENINGS]
    label_for: set[str] = set()
    for opening in openings:
        if _tag(opening) in _LABELS:
            values = _props(opening).values
            label_for.update(_key(values[k]) for k in ("htmlFor", "for") if k in values)
    found: list[Control] = []
    for opening in openings:
        tag = _tag(opening)
        native = tag in _NATIVE
        if not native and tag not in kit:
            continue
        props = _props(opening)
        if props.unknown or _hidden(props):
            continue
        naming = _NAMING if native else _NAMING | {"label"}
        if naming & props.values.keys():
            continue
        if "id" in props.values and _key(props.values["id"]) in label_for:
            continue
        if kit.get(tag) == "Select" and _trigger_named(opening, label_for):
            continue
        around = list(_enclosing(opening))
        if any(name in _LABELS for name, _ in around):
            continue
        item = next((element for name, element in around if name == "FormItem"), None)
        if item is not None and _holds(item, "FormLabel"):
            continue
        found.append(Control(opening, tag, item is not None))
    return found


def _trigger_named(opening: Node, label_for: set[str]) -> bool:
    """A design system's ``<Select>`` whose ``<SelectTrigger>`` has a name."""
    element = opening.parent if opening.type == "jsx_opening_element" else None
    if element is None:
        return False
    for node in walk(element):
        if node.type in _OPENINGS:
            if _tag(node) != "SelectTrigger":
                continue
            values = _props(node).values
            if _NAMING & values.keys():
                return True
            if "id" in values and _key(values["id"]) in label_for:
                return True
    return False

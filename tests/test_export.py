"""The export's documents, as pure functions: the Markdown byte for byte, its structure under
a CommonMark parser whatever the model or the repository wrote, the JSON, the file name."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from feature_planner.export import ExportFormat, file_name, render, to_json, to_markdown
from feature_planner.models import sanitize_text

JOB = "7c3f4c1e-1b7d-4c59-9d7a-0c2b7f7f4e11"

STATUS: dict[str, Any] = {
    "jobId": JOB,
    "status": "completed",
    "input": {
        "pageOrComponent": "Cart page",
        "featureType": "enhancement",
        "priorityLevel": "high",
        "additionalContext": "Mobile first",
    },
    "createdAt": 1_750_000_000_000,
    "lastEventId": 12,
    "parentJobId": None,
    "startedAt": 1_750_000_001_000,
    "finishedAt": 1_750_000_005_500,
    "result": {
        "suggestions": [
            {
                "title": "Save the cart",
                "rationale": "Carts are lost on reload.",
                "description": "Keep the cart in local storage.\n\nRestore it on load.",
                "implementationConsiderations": ["Version the stored shape", "Clear on logout"],
                "evidence": [
                    {
                        "path": "app/cart/page.tsx",
                        "startLine": 2,
                        "endLine": 2,
                        "quote": "const items = useCart()",
                    }
                ],
                "effort": "small",
                "impact": "high",
            },
            {
                "title": "Show totals",
                "rationale": "",
                "description": "A running total.",
            },
        ],
        "context": "Read the cart page.",
        "tokenUsage": {"inputTokens": 120, "outputTokens": 45, "costUsd": 0.0012},
        "executionTimeMs": 4500,
        "retryCount": 1,
        "provider": "scripted",
        "model": "scripted",
        "timestamp": 1_750_000_005_500,
        "evidenceStats": {"cited": 2, "verified": 1, "dropped": 1},
        "notice": "Played by the scripted provider; no AI model was used.",
    },
    "provider": "scripted",
    "model": "scripted",
}

GOLDEN = """\
# Feature suggestions: Cart page

- **Feature type:** enhancement
- **Priority:** high
- **Additional context:** Mobile first
- **Provider:** scripted
- **Model:** scripted
- **Requested:** 2025-06-15 15:06:40 UTC
- **Completed:** 2025-06-15 15:06:45 UTC
- **Job:** `7c3f4c1e-1b7d-4c59-9d7a-0c2b7f7f4e11`

Played by the scripted provider; no AI model was used.

## 1. Save the cart

Keep the cart in local storage.

Restore it on load.

### Rationale

Carts are lost on reload.

### Implementation considerations

- Version the stored shape
- Clear on logout

**Effort:** small · **Impact:** high

### Evidence

`app/cart/page.tsx:2-2`

```tsx
const items = useCart()
```

## 2. Show totals

A running total.

## Context

Read the cart page.

## Evidence and token usage

- **Evidence cited:** 2
- **Evidence verified:** 1
- **Evidence dropped:** 1
- **Input tokens:** 120
- **Output tokens:** 45
- **Cost (USD):** 0.0012
- **Execution time:** 4500 ms
- **Retries:** 1
"""

# Text that would be structure if it were written into Markdown as it is.
HOSTILE = [
    "# heading",
    "## 2. a heading ##",
    "<script>alert(1)</script>",
    "[link](javascript:alert(1))",
    "![image](https://evil.example/x.png)",
    "<https://evil.example>",
    "[ref]: https://evil.example",
    "[^1] and [ ] a task",
    "**bold** _em_ `code` ~~struck~~ $x$",
    "- item",
    "+ item",
    "* item",
    "1. item",
    "2) item",
    "> quote",
    "===",
    "---",
    "| a | b |\n|---|---|",
    "&lt;b&gt; &#x3C;i>",
    "    indented code",
    "```js\nalert(1)\n```",
    "~~~\nfence\n~~~",
    "trailing backslash\\",
    "back\\\nslash, a hard break",
    "\\**escaped, then bold\\**",
    "hard  \nbreak",
    "<!-- comment -->",
    "line one\n# heading\n<div>block</div>",
    "carriage\r# return",
]

PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
FORBIDDEN = {
    "html_block",
    "html_inline",
    "link_open",
    "image",
    "code_block",
    "em_open",
    "s_open",
    "table_open",
    "blockquote_open",
    "hr",
    "hardbreak",
}


def status_with(**changes: Any) -> dict[str, Any]:
    """``STATUS`` with ``changes`` at dotted places (``result.suggestions.0.title``)."""
    status = copy.deepcopy(STATUS)
    for place, value in changes.items():
        *path, last = place.split(".")
        target: Any = status
        for step in path:
            target = target[int(step)] if step.isdigit() else target[step]
        target[int(last) if last.isdigit() else last] = value
    return status


def blocks(markdown: str) -> list[str]:
    """The document's block structure: each block token, headings with their level."""
    return [token.type + token.tag for token in PARSER.parse(markdown) if token.type != "inline"]


def headings(markdown: str) -> list[tuple[str, str]]:
    tokens = PARSER.parse(markdown)
    return [
        (token.tag, _text(tokens[index + 1]))
        for index, token in enumerate(tokens)
        if token.type == "heading_open"
    ]


def every_token(markdown: str) -> list[Token]:
    found = []
    for token in PARSER.parse(markdown):
        found.append(token)
        found.extend(token.children or [])
    return found


def plain_text(markdown: str) -> str:
    """What a reader sees: every text, code and fence content, whitespace collapsed."""
    shown = [
        token.content
        for token in every_token(markdown)
        if token.type in ("text", "code_inline", "fence")
    ]
    return " ".join(" ".join(shown).split())


def _text(inline: Token) -> str:
    return "".join(child.content for child in inline.children or [])


# -- the document -----------------------------------------------------------------------------


def test_the_markdown_is_the_golden_document() -> None:
    assert to_markdown(STATUS) == GOLDEN
    assert render(STATUS, ExportFormat.MARKDOWN) == GOLDEN.encode()


def test_its_structure_is_the_headings_and_lists_expected() -> None:
    assert headings(GOLDEN) == [
        ("h1", "Feature suggestions: Cart page"),
        ("h2", "1. Save the cart"),
        ("h3", "Rationale"),
        ("h3", "Implementation considerations"),
        ("h3", "Evidence"),
        ("h2", "2. Show totals"),
        ("h2", "Context"),
        ("h2", "Evidence and token usage"),
    ]
    lists = [token.type for token in PARSER.parse(GOLDEN) if token.type.endswith("list_open")]
    assert lists == ["bullet_list_open"] * 3
    fences = [token for token in PARSER.parse(GOLDEN) if token.type == "fence"]
    assert [(fence.info, fence.content) for fence in fences] == [
        ("tsx", "const items = useCart()\n")
    ]


def test_a_follow_up_names_its_parent_and_missing_parts_are_left_out() -> None:
    parent = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
    status = status_with(parentJobId=parent)
    del status["input"]["additionalContext"]
    del status["result"]["evidenceStats"]
    del status["result"]["notice"]
    status["result"]["suggestions"][0].update(effort=None, impact="low")
    markdown = to_markdown(status)
    assert f"- **Follow-up of:** `{parent}`\n" in markdown
    assert "Additional context" not in markdown and "Evidence cited" not in markdown
    assert "no AI model" not in markdown
    assert "\n**Impact:** low\n" in markdown and "Effort" not in markdown


@pytest.mark.parametrize(
    "state", ["pending", "in_progress", "failed", "cancelled"], ids=lambda state: state
)
def test_only_a_completed_job_has_a_markdown_document(state: str) -> None:
    with pytest.raises(ValueError, match=f"is {state}"):
        to_markdown(status_with(status=state, result=None))


# -- text is data -----------------------------------------------------------------------------

FIELDS = [
    "input.pageOrComponent",
    "input.additionalContext",
    "result.suggestions.0.title",
    "result.suggestions.0.description",
    "result.suggestions.0.rationale",
    "result.suggestions.0.implementationConsiderations.0",
    "result.suggestions.0.evidence.0.path",
    "result.context",
    "result.notice",
    "result.model",
]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("text", HOSTILE)
def test_text_from_the_model_or_the_repository_adds_no_structure(field: str, text: str) -> None:
    plain = to_markdown(status_with(**{field: "plain words"}))
    hostile = to_markdown(status_with(**{field: text}))
    assert blocks(hostile) == blocks(plain)
    assert [token.type for token in every_token(hostile) if token.type in FORBIDDEN] == []
    strong = [token for token in every_token(hostile) if token.type == "strong_open"]
    assert len(strong) == len([t for t in every_token(plain) if t.type == "strong_open"])
    # And the reader sees the text as it was written (its whitespace aside; the request's
    # own text is sanitized when it is received, a CR with the other control characters).
    written = sanitize_text(text) if field.startswith("input.") else text
    assert " ".join(written.split()) in plain_text(hostile)


def test_a_hostile_title_is_its_heading_word_for_word() -> None:
    title = "# heading <script>alert(1)</script> [link](javascript:alert(1)) ##"
    markdown = to_markdown(status_with(**{"result.suggestions.0.title": title}))
    assert ("h2", f"1. {title}") in headings(markdown)
    assert "<script>" not in PARSER.render(markdown)
    assert [t.attrGet("href") for t in every_token(markdown) if t.attrGet("href")] == []


@pytest.mark.parametrize(
    ("quote", "fence"),
    [
        ("const a = 1", "```"),
        ("```\nbreak out\n```", "````"),
        ("a ```` b\n`x`", "`````"),
        ("~~~\ntilde\n~~~", "```"),
        ("<script>alert(1)</script>\n# not a heading", "```"),
    ],
)
def test_a_quote_stays_in_its_fence_whatever_it_holds(quote: str, fence: str) -> None:
    evidence = {"path": "docs/guide.md", "startLine": 3, "endLine": 5, "quote": quote}
    markdown = to_markdown(status_with(**{"result.suggestions.0.evidence": [evidence]}))
    assert f"`docs/guide.md:3-5`\n\n{fence}md\n{quote}\n{fence}\n" in markdown
    fences = [token for token in PARSER.parse(markdown) if token.type == "fence"]
    assert [(token.markup, token.content) for token in fences] == [(fence, quote + "\n")]
    assert blocks(markdown) == blocks(GOLDEN)


def test_a_quote_keeps_its_lines_and_loses_its_control_characters() -> None:
    quote = "one\r\ntwo\rthree\x1b[31m red\x1b[0m\x00"
    evidence = {"path": "a.py", "startLine": 1, "endLine": 3, "quote": quote}
    markdown = to_markdown(status_with(**{"result.suggestions.0.evidence": [evidence]}))
    fences = [token for token in PARSER.parse(markdown) if token.type == "fence"]
    assert [token.content for token in fences] == ["one\ntwo\nthree[31m red[0m\n"]
    assert "\x1b" not in markdown and "\r" not in markdown


def test_a_path_with_backticks_is_one_code_span() -> None:
    evidence = {"path": "odd`name`.ts", "startLine": 1, "endLine": 1, "quote": "x"}
    markdown = to_markdown(status_with(**{"result.suggestions.0.evidence": [evidence]}))
    spans = [t.content for t in every_token(markdown) if t.type == "code_inline"]
    assert "odd`name`.ts:1-1" in spans


def test_an_unknown_token_figure_is_named_by_its_key_as_code() -> None:
    usage = {"inputTokens": 1, "outputTokens": 2, "<b>weird</b>": "1. x"}
    markdown = to_markdown(status_with(**{"result.tokenUsage": usage}))
    assert "- `<b>weird</b>`: 1\\. x\n" in markdown
    assert blocks(markdown) == blocks(GOLDEN)


# -- JSON, and the file's name ----------------------------------------------------------------


def test_the_json_is_the_status_document_itself() -> None:
    data = to_json(STATUS)
    assert json.loads(data) == STATUS
    assert data.endswith(b"}\n") and data.startswith(b'{\n  "jobId": ')
    assert render(STATUS, ExportFormat.JSON) == data
    unicode = status_with(**{"input.pageOrComponent": "Корзина 𝄞"})
    assert "Корзина 𝄞".encode() in to_json(unicode)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("Cart page", "cart-page-7c3f4c1e"),
        ("  Über <Checkout> / step #2 ", "uber-checkout-step-2-7c3f4c1e"),
        ('"; rm -rf / ; echo "', "rm-rf-echo-7c3f4c1e"),
        ("../../etc/passwd", "etc-passwd-7c3f4c1e"),
        ("Корзина", "feature-suggestions-7c3f4c1e"),
        ("x" * 300, "x" * 60 + "-7c3f4c1e"),
        ("a" * 59 + " b", "a" * 59 + "-7c3f4c1e"),
    ],
)
def test_the_file_name_is_safe_and_names_the_page_and_the_job(page: str, expected: str) -> None:
    status = status_with(**{"input.pageOrComponent": page})
    assert file_name(status, ExportFormat.MARKDOWN) == expected + ".md"
    assert file_name(status, ExportFormat.JSON) == expected + ".json"


def test_the_formats_say_their_media_types() -> None:
    assert ExportFormat("markdown").media_type == "text/markdown; charset=utf-8"
    assert ExportFormat("json").media_type == "application/json"

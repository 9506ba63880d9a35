"""The evidence verifier: what a suggestion cites, checked against real files through the
repository sandbox, and the counts of ``complete.evidenceStats``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from feature_planner.agent.evidence import (
    EvidenceTally,
    Problem,
    SuggestionCheck,
    Verdict,
    normalize_whitespace,
    retry_message,
    verify,
    verify_suggestion,
    verify_suggestion_in_thread,
)
from feature_planner.agent.sandbox import BINARY_SNIFF_BYTES, Sandbox
from feature_planner.models import (
    CompleteEvent,
    Effort,
    Evidence,
    EvidenceStats,
    Impact,
    Suggestion,
    TokenUsage,
)
from tests.agent.conftest import write

PAGE = "src/app/page.tsx"
PAGE_TEXT = (
    "import { getItems } from '@/lib/items'\n"  # 1
    "\n"  # 2
    "export default async function ItemsPage() {\n"  # 3
    "\tconst items = await getItems()   \n"  # 4: a tab, trailing spaces
    "  return (\n"  # 5
    "    <ul>\n"  # 6
    "      {items.map((item) => <li key={item.id}>{item.name}</li>)}\n"  # 7
    "    </ul>\n"  # 8
    "  )\n"  # 9
    "}\n"  # 10
    "// TODO: paging\n"  # 11
)
LIB = "src/lib/items.ts"
LIB_TEXT = "export async function getItems() {\r\n  const res = await fetch('/api/items')\r\n  return res.json()\r\n}\r\n"  # noqa: E501
SECRET = "hunter2-do-not-show"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write(root / PAGE, PAGE_TEXT)
    write(root / LIB, LIB_TEXT.encode())  # CRLF line endings, written as they are
    write(root / ".env", f"API_KEY={SECRET}\n")
    write(root / ".gitignore", "generated/\n")
    write(root / "generated/items.ts", "export const items = []\n")
    write(root / "node_modules/lib/index.js", "module.exports = {}\n")
    write(root / "assets/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00" + b"x" * 64)
    write(tmp_path / "outside.txt", "export const outside = true\n")
    (root / "link-out.txt").symlink_to(tmp_path / "outside.txt")
    (root / "src/app/link-in.tsx").symlink_to("page.tsx")
    return root


def cite(path: str, start: int, end: int, quote: str) -> Evidence:
    return Evidence(path=path, start_line=start, end_line=end, quote=quote)


def check(root: Path, item: Evidence) -> Verdict:
    return verify(Sandbox(root), item)


def suggestion(*evidence: Evidence, title: str = "Page the items list") -> Suggestion:
    return Suggestion(
        title=title,
        rationale="The list loads every item at once.",
        description="Add paging to the items page.",
        implementation_considerations=["Keep the page in the URL."],
        evidence=list(evidence),
        effort=Effort.MEDIUM,
        impact=Impact.HIGH,
    )


GOOD = cite(PAGE, 4, 4, "const items = await getItems()")
ALSO_GOOD = cite(PAGE, 11, 11, "TODO: paging")
PAST_END = cite(PAGE, 50, 55, "const items = await getItems()")
MISSING = cite("src/app/nothing.tsx", 1, 1, "anything")


# ------------------------------------------------------------------- the model


def test_a_suggestion_without_evidence_reads_on_the_wire_as_before() -> None:
    plain = Suggestion(title="t", rationale="r", description="d")
    assert plain.to_wire() == {
        "title": "t",
        "rationale": "r",
        "description": "d",
        "implementationConsiderations": [],
    }
    event = CompleteEvent(
        suggestions=[plain],
        context="c",
        token_usage=TokenUsage(),
        execution_time_ms=1,
        retry_count=0,
        provider="p",
        model="m",
        timestamp=2,
    )
    assert "evidence" not in json.dumps(event.to_wire())


def test_a_suggestion_with_evidence_carries_it_in_camel_case() -> None:
    wire = suggestion(GOOD).to_wire()
    assert wire["evidence"] == [
        {"path": PAGE, "startLine": 4, "endLine": 4, "quote": "const items = await getItems()"}
    ]
    assert (wire["effort"], wire["impact"]) == ("medium", "high")
    assert Suggestion.model_validate(wire) == suggestion(GOOD)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start_line": 5, "end_line": 4}, "endLine (4) is before startLine (5)"),
        ({"start_line": 0}, "greater than or equal to 1"),
        ({"path": ""}, "at least 1 character"),
        ({"path": "x" * 501}, "at most 500 characters"),
        ({"quote": ""}, "at least 1 character"),
        ({"quote": "x" * 2001}, "at most 2000 characters"),
    ],
)
def test_an_ill_formed_item_is_refused_at_validation(
    fields: dict[str, object], message: str
) -> None:
    item = {"path": PAGE, "start_line": 1, "end_line": 1, "quote": "import"} | fields
    with pytest.raises(ValidationError, match=re.escape(message)):
        Evidence.model_validate(item)


def test_a_suggestion_carries_at_most_five_items_and_known_levels() -> None:
    with pytest.raises(ValidationError, match="at most 5 items"):
        suggestion(*[GOOD] * 6)
    with pytest.raises(ValidationError):
        Suggestion.model_validate(suggestion(GOOD).to_wire() | {"effort": "huge"})
    assert EvidenceStats(cited=3, verified=2, dropped=1).to_wire() == {
        "cited": 3,
        "verified": 2,
        "dropped": 1,
    }


# ------------------------------------------------------------------- one item


def test_a_correct_cite_is_verified(root: Path) -> None:
    verdict = check(root, GOOD)
    assert verdict.ok and verdict.problem is None and verdict.reason == ""
    assert verdict.evidence == GOOD


def test_a_verified_path_is_given_as_the_sandbox_resolves_it(root: Path) -> None:
    verdict = check(root, cite("./src\\app//page.tsx", 4, 4, "getItems()"))
    assert verdict.ok and verdict.evidence.path == PAGE
    linked = check(root, cite("src/app/link-in.tsx", 4, 4, "getItems()"))  # a link inside
    assert linked.ok and linked.evidence.path == "src/app/link-in.tsx"


def test_a_wrong_path_is_no_such_file(root: Path) -> None:
    verdict = check(root, MISSING)
    assert (verdict.problem, verdict.reason) == (Problem.MISSING, "no such file: " + MISSING.path)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../outside.txt", "'..' is not allowed"),
        ("src/../../outside.txt", "'..' is not allowed"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("~/.bashrc", "absolute paths are not allowed"),
        ("link-out.txt", "symbolic link that leads outside the root"),
        (".env", "looks like a secret"),
        ("generated/items.ts", "ignored"),
        ("node_modules/lib/index.js", "ignored"),
        (".git/config", ".git internals"),
        ("src/app", "is a directory"),
    ],
)
def test_what_the_tools_refuse_the_verifier_refuses(root: Path, path: str, reason: str) -> None:
    verdict = check(root, cite(path, 1, 1, "export"))
    assert verdict.problem is Problem.REFUSED
    assert verdict.reason.startswith("that path may not be read: ")
    assert reason in verdict.reason
    assert SECRET not in verdict.reason and "outside = true" not in verdict.reason


def test_a_binary_file_cannot_be_cited(root: Path) -> None:
    verdict = check(root, cite("assets/logo.png", 1, 1, "PNG"))
    assert verdict.problem is Problem.UNREADABLE
    assert "binary file" in verdict.reason


def test_a_nul_past_the_sniff_is_still_text(root: Path) -> None:
    write(root / "log.txt", ("x" * BINARY_SNIFF_BYTES + "\nend\n").encode() + b"\x00\n")
    assert check(root, cite("log.txt", 2, 2, "end")).ok


def test_a_range_past_the_end_says_how_long_the_file_is(root: Path) -> None:
    verdict = check(root, PAST_END)
    assert verdict.problem is Problem.LINES
    assert verdict.reason.startswith(f"{PAGE} has 11 lines; lines 50-55 do not exist")
    assert verdict.reason.endswith(". The quote occurs at line 4.")  # where to cite it instead


def test_a_paraphrased_quote_fails_and_shows_the_lines(root: Path) -> None:
    verdict = check(root, cite(PAGE, 3, 4, "the page awaits getItems before rendering"))
    assert verdict.problem is Problem.QUOTE
    assert verdict.reason == (
        f"the quote does not occur in lines 3-4 of {PAGE}; the lines read:\n"
        "export default async function ItemsPage() {\n\tconst items = await getItems()   "
    )


def test_the_lines_shown_are_cut_at_300_characters(root: Path) -> None:
    write(root / "long.ts", "const a = '" + "a" * 1_000 + "'\n")
    verdict = check(root, cite("long.ts", 1, 1, "const b"))
    shown = verdict.reason.split("the lines read:\n", 1)[1]
    assert shown == "const a = '" + "a" * 289 + "…"


@pytest.mark.parametrize(
    ("item", "why"),
    [
        (cite(PAGE, 4, 4, "const   items =\tawait getItems()"), "runs of spaces and a tab"),
        (cite(PAGE, 4, 4, "\tconst items = await getItems()   "), "leading tab, trailing spaces"),
        (cite(PAGE, 4, 4, "const items = await getItems()\r\n"), "a CRLF line ending"),
        (cite(LIB, 1, 3, "getItems() { const res = await fetch('/api/items')"), "a CRLF file"),
        (cite(LIB, 2, 2, "fetch('/api/items')"), "a part of a line of a CRLF file"),
        (cite(PAGE, 5, 9, "return (\n<ul>\n{items.map((item) =>"), "a quote spanning lines"),
        (cite(PAGE, 3, 5, "getItems() return ("), "a quote across a line break"),
        (cite(PAGE, 1, 3, "'@/lib/items' export default"), "across a blank line"),
    ],
)
def test_whitespace_does_not_matter(root: Path, item: Evidence, why: str) -> None:
    assert check(root, item).ok, why


@pytest.mark.parametrize(
    "quote",
    [
        "const items=await getItems()",  # whitespace taken out is not whitespace changed
        "const Items = await getItems()",  # case
        "const items = await getItems();",  # one character more
        "const items = getItems()",  # a word left out
    ],
)
def test_anything_but_whitespace_matters(root: Path, quote: str) -> None:
    assert check(root, cite(PAGE, 4, 4, quote)).problem is Problem.QUOTE


def test_a_quote_from_other_lines_of_the_file_fails_and_says_where_it_is(root: Path) -> None:
    verdict = check(root, cite(PAGE, 1, 3, "const items = await getItems()"))
    assert verdict.problem is Problem.QUOTE
    assert verdict.reason.startswith(
        f"the quote does not occur in lines 1-3 of {PAGE} (it occurs at line 4); "
    )
    spanning = check(root, cite(PAGE, 1, 2, "return ( <ul>"))
    assert "(it occurs at lines 5-6)" in spanning.reason
    absent = check(root, cite(PAGE, 1, 2, "nowhere in the file"))
    assert "occurs at" not in absent.reason


def test_a_quote_that_occurs_many_times_names_the_first_places(root: Path) -> None:
    write(root / "many.ts", "x()\n" * 6)
    verdict = check(root, cite("many.ts", 7, 7, "x()"))
    assert verdict.reason.endswith("The quote occurs at line 1; line 2; line 3; and further on.")


@pytest.mark.parametrize("quote", [" ", "\n\t\r\n", "\u00a0\u2003"])
def test_a_quote_of_only_whitespace_fails(root: Path, quote: str) -> None:
    verdict = check(root, cite(PAGE, 2, 2, quote))  # line 2 is blank: it would "occur"
    assert verdict.problem is Problem.QUOTE
    assert verdict.reason.startswith("the quote is empty")


def test_normalize_whitespace() -> None:
    assert normalize_whitespace("  a\tb \r\n\n c\u00a0d  ") == "a b c d"


# ------------------------------------------------------------------- a suggestion


def test_a_suggestion_is_reduced_to_its_verified_items(root: Path) -> None:
    checked = verify_suggestion(Sandbox(root), suggestion(GOOD, MISSING, ALSO_GOOD, PAST_END))
    assert checked.cited == 4
    assert checked.verified == (GOOD, ALSO_GOOD)
    assert checked.suggestion == suggestion(GOOD, ALSO_GOOD)  # everything else as it was
    assert [(n, v.problem) for n, v in checked.failed] == [
        (2, Problem.MISSING),
        (4, Problem.LINES),
    ]
    assert checked.sendable and not checked.complete


def test_identical_items_are_kept_once(root: Path) -> None:
    same = cite("./" + PAGE, 4, 4, "const items  =  await getItems()")
    checked = verify_suggestion(Sandbox(root), suggestion(GOOD, same))
    assert checked.cited == 2 and checked.verified == (GOOD,) and checked.complete


def test_a_suggestion_with_no_verified_item_may_not_be_sent(root: Path) -> None:
    failed = verify_suggestion(Sandbox(root), suggestion(MISSING, PAST_END))
    assert not failed.sendable and not failed.complete and failed.verified == ()
    bare = verify_suggestion(Sandbox(root), suggestion())
    assert not bare.sendable and bare.cited == 0 and bare.failed == ()


async def test_verification_runs_in_a_thread(root: Path) -> None:
    for where in (Sandbox(root), root, str(root)):
        checked = await verify_suggestion_in_thread(where, suggestion(GOOD, MISSING))
        assert checked.verified == (GOOD,) and len(checked.failed) == 1


# ------------------------------------------------------------------- the retry message


def test_the_retry_message_names_each_failed_item_and_why(root: Path) -> None:
    secret = cite(".env", 1, 1, "API_KEY")
    checked = verify_suggestion(Sandbox(root), suggestion(GOOD, MISSING, PAST_END, secret))
    message = retry_message(checked)
    lines = message.splitlines()
    assert lines[0] == (
        'Suggestion "Page the items list": 3 of 4 evidence items could not be verified '
        "against the repository:"
    )
    assert lines[1] == f"- evidence 2 ({MISSING.path}, line 1): no such file: {MISSING.path}"
    assert lines[2].startswith(
        f"- evidence 3 ({PAGE}, lines 50-55): {PAGE} has 11 lines; lines 50-55 do not exist"
    )
    assert lines[3].startswith("- evidence 4 (.env, line 1): that path may not be read: ")
    assert "evidence 1 " not in message  # the verified item is not named
    assert "exact lines" in message and "verbatim" in message
    assert SECRET not in message


def test_the_retry_message_indents_the_lines_read_under_their_item(root: Path) -> None:
    checked = verify_suggestion(Sandbox(root), suggestion(cite(PAGE, 5, 6, "return []")))
    assert retry_message(checked).splitlines()[1:4] == [
        f"- evidence 1 ({PAGE}, lines 5-6): the quote does not occur in lines 5-6 of {PAGE}; "
        "the lines read:",
        "    return (",
        "      <ul>",
    ]
    one_line = verify_suggestion(Sandbox(root), suggestion(cite(PAGE, 4, 4, "return []")))
    assert f"({PAGE}, line 4): the quote does not occur in line 4 of {PAGE}" in retry_message(
        one_line
    )


def test_the_retry_message_says_when_nothing_is_left(root: Path) -> None:
    checked = verify_suggestion(Sandbox(root), suggestion(MISSING))
    assert "has no verified evidence and cannot be shown" in retry_message(checked)
    bare = retry_message(verify_suggestion(Sandbox(root), suggestion()))
    assert bare.startswith('Suggestion "Page the items list" cites no evidence')
    assert "1 to 5 evidence items" in bare and "verbatim" in bare


# ------------------------------------------------------------------- the tally


def assert_consistent(stats: EvidenceStats) -> None:
    assert stats.verified <= stats.cited
    assert stats.verified + stats.dropped <= stats.cited


def test_an_item_fixed_on_retry_counts_twice(root: Path) -> None:
    sandbox = Sandbox(root)
    tally = EvidenceTally()
    first = verify_suggestion(sandbox, suggestion(GOOD, PAST_END))
    tally.attempt(first)
    fixed = cite(PAGE, 3, 4, PAST_END.quote)
    second = verify_suggestion(sandbox, suggestion(GOOD, fixed, ALSO_GOOD))
    tally.attempt(second, previous=first)  # GOOD comes back unchanged: kept, not re-cited
    tally.send(second)
    stats = tally.to_stats()
    # cited: GOOD and PAST_END, then the fix and the new ALSO_GOOD; PAST_END went back, so
    # it is neither verified nor dropped
    assert stats == EvidenceStats(cited=4, verified=3, dropped=0)
    assert_consistent(stats)


def test_the_tally_across_a_run(root: Path) -> None:
    sandbox = Sandbox(root)
    tally = EvidenceTally()

    # 1: right the first time
    one = verify_suggestion(sandbox, suggestion(GOOD, ALSO_GOOD))
    tally.attempt(one)
    tally.send(one)
    assert tally.to_stats() == EvidenceStats(cited=2, verified=2, dropped=0)

    # 2: one item fixed on retry, one still wrong after it: sent with what was verified
    two_a = verify_suggestion(sandbox, suggestion(GOOD, PAST_END, MISSING))
    tally.attempt(two_a)
    two_b = verify_suggestion(sandbox, suggestion(GOOD, cite(PAGE, 11, 11, "paging"), MISSING))
    tally.attempt(two_b, previous=two_a)
    tally.send(two_b)
    # cited: 3 + (the fix and MISSING again) 2; verified: GOOD and the fix; dropped: MISSING
    assert tally.to_stats() == EvidenceStats(cited=7, verified=4, dropped=1)

    # 3: nothing verified after its retries: given up, every item of its last attempt dropped
    three_a = verify_suggestion(sandbox, suggestion(MISSING))
    tally.attempt(three_a)
    three_b = verify_suggestion(sandbox, suggestion(PAST_END, ALSO_GOOD))
    tally.attempt(three_b, previous=three_a)
    tally.give_up(three_b)  # e.g. enough suggestions were sent already
    assert tally.to_stats() == EvidenceStats(cited=10, verified=4, dropped=3)

    # 4: re-sending the same failed item is a new attempt at it
    four_a = verify_suggestion(sandbox, suggestion(MISSING))
    tally.attempt(four_a)
    four_b = verify_suggestion(sandbox, suggestion(MISSING))
    tally.attempt(four_b, previous=four_a)
    tally.give_up(four_b)
    stats = tally.to_stats()
    assert stats == EvidenceStats(cited=12, verified=4, dropped=4)
    assert_consistent(stats)


def test_an_empty_tally() -> None:
    assert EvidenceTally().to_stats() == EvidenceStats(cited=0, verified=0, dropped=0)


def test_a_check_is_a_plain_value(root: Path) -> None:
    checked = verify_suggestion(Sandbox(root), suggestion(GOOD))
    assert isinstance(checked, SuggestionCheck)
    assert checked == verify_suggestion(Sandbox(root), suggestion(GOOD))

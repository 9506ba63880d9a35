"""What the AI providers share: the narrative's blocks, usage totals, the two kinds of retry."""

from __future__ import annotations

import pytest

from feature_planner.agent.providers.backoff import CallFailure, CallRetries
from feature_planner.agent.providers.conversation import (
    Narrative,
    StructuredRetries,
    UsageTotals,
)
from feature_planner.errors import ProviderError
from tests.agent.sinks import RecordingSink


@pytest.mark.parametrize(
    ("before", "after", "chunks"),
    [
        ("Reading the page.", "Now the hook.", ["Reading the page.", "\n\nNow the hook."]),
        ("A list:\n", "Next.", ["A list:\n", "\nNext."]),
        ("Done.\n\n", "Next.", ["Done.\n\n", "Next."]),
    ],
)
def test_a_new_block_is_one_blank_line_after_the_text_before(
    before: str, after: str, chunks: list[str]
) -> None:
    sink = RecordingSink()
    narrative = Narrative(sink)
    narrative.start_block()  # the first block has nothing to be set apart from
    narrative.text(before)
    narrative.start_block()
    narrative.start_block()  # blocks without text add nothing
    narrative.text("")
    narrative.text(after)
    assert sink.chunks == chunks
    assert narrative.length == len("".join(chunks))


def test_usage_totals_sum_and_keep_cache_counts_unknown_until_reported() -> None:
    usage = UsageTotals()
    usage.add(input_tokens=100, output_tokens=20)
    assert usage.token_usage().cache_read_input_tokens is None
    usage.add(input_tokens=50, output_tokens=5, cache_read=30, cache_creation=0)
    total = usage.token_usage()
    assert (total.input_tokens, total.output_tokens) == (150, 25)
    assert (total.cache_read_input_tokens, total.cache_creation_input_tokens) == (30, 0)


def test_structured_retries_run_out_after_the_allowed_count() -> None:
    retries = StructuredRetries(allowed=1)
    retries.charge("missing context")
    with pytest.raises(ProviderError, match=r"after 1 retries.*Last problem: too few"):
        retries.charge("too few")
    assert retries.used == 2


async def test_a_call_is_retried_only_before_its_first_text() -> None:
    transient = CallFailure("The API is overloaded (529); try again", retryable=True)
    retries = CallRetries(max_retries=2, base_delay_s=0.001, max_delay_s=0.001)
    await retries.after(transient, streamed=False)
    await retries.after(transient, streamed=False)
    with pytest.raises(ProviderError, match=r"overloaded \(529\); try again \(still failing"):
        await retries.after(transient, streamed=False)

    with pytest.raises(ProviderError, match=r"^The answer broke off mid-stream: the API is"):
        await CallRetries(2, 0.001, 0.001).after(transient, streamed=True)

    final = CallFailure("The API key was refused", retryable=False)
    with pytest.raises(ProviderError, match=r"^The API key was refused$"):
        await CallRetries(2, 0.001, 0.001).after(final, streamed=False)

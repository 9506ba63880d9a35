"""The README keeps its promises: two commands first, and every setting listed."""

from __future__ import annotations

from pathlib import Path

from feature_planner.config import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_the_readme_opens_with_the_run_and_test_commands() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["scripts/serve", "scripts/test"]
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "scripts/test" in ci


def test_every_setting_is_in_the_readme() -> None:
    missing = [
        name for name in Settings.model_fields if f"FEATURE_PLANNER_{name.upper()}" not in README
    ]
    assert missing == []

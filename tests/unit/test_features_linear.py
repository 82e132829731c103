"""The local router's features take linear time, whatever the prompt's shape.

A prompt of newlines once cost time in the square of its length, with the GIL held:
one prompt stalled a whole API or worker process. Each shape below is one that made
a pattern re-scan.
"""

from __future__ import annotations

import time

import pytest

from tierroute.classify.features import dense_features, hashed_counts, is_multiple_choice
from tierroute.domain.specs import MAX_PROMPT_CHARS

# Far above what linear work on 800,000 characters needs (a few ms), far below the
# seconds to hours that quadratic patterns took: a complexity guard, not a speed target.
CPU_SECONDS_PER_PROMPT = 1.0

PATHOLOGICAL = {
    "newlines": "\n" * (MAX_PROMPT_CHARS - 1) + "x",
    "spaces": " " * (MAX_PROMPT_CHARS - 1) + "x",
    "blank lines with tabs": "\t\n" * (MAX_PROMPT_CHARS // 2),
    "semicolon then whitespace": ";" + " \n" * (MAX_PROMPT_CHARS // 2 - 1),
    "list markers": "1." + "\n" * (MAX_PROMPT_CHARS - 2),
    "option markers": "\n A)" * (MAX_PROMPT_CHARS // 4),
    "many semicolons": "; \n" * (MAX_PROMPT_CHARS // 3),
    "han characters": "分析" * (MAX_PROMPT_CHARS // 2),
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_features_of_a_maximal_pathological_prompt_take_linear_time(name: str) -> None:
    prompt = PATHOLOGICAL[name]
    assert len(prompt) <= MAX_PROMPT_CHARS
    started = time.process_time()
    dense_features(prompt)
    hashed_counts(prompt)
    is_multiple_choice(prompt)
    assert time.process_time() - started < CPU_SECONDS_PER_PROMPT


def test_options_and_lists_are_still_found_after_blank_lines() -> None:
    prompt = "Which is a prime?\n\n  A. 4\n\n  B. 6\n\n  C. 7\n\n  D. 9\n"
    assert is_multiple_choice(prompt)

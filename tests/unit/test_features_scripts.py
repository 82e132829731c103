"""Prompts in scripts written without spaces are measured by their words, not as one word.

Chinese and Japanese put no spaces between words: split on whitespace, a paragraph of
them was one word, and the router (which weighs words as well as characters) sent the
lesson's Opus example, translated, to Haiku.
"""

from __future__ import annotations

import math

from tierroute.classify.features import CUE_NAMES, MAX_SCANNED_CHARS, dense_features

WORDS = CUE_NAMES.index("log_words")
SENTENCES = CUE_NAMES.index("log_sentences")


def test_han_and_kana_characters_count_as_words() -> None:
    cues = dense_features("请分析这个系统。然后解释原因。")
    # One run without spaces, plus its 13 Han characters, each a word.
    assert cues[WORDS] == math.log1p(1 + 13)
    assert cues[SENTENCES] == math.log1p(2)


def test_a_huge_prompt_counts_its_wide_words_from_the_scanned_part() -> None:
    n = 4 * MAX_SCANNED_CHARS
    cues = dense_features("字" * n)
    assert math.isclose(cues[WORDS], math.log1p(1 + n), rel_tol=1e-6)


def test_english_counts_as_before() -> None:
    cues = dense_features("Explain each step. Then compare them?")
    assert cues[WORDS] == math.log1p(6) and cues[SENTENCES] == math.log1p(2)

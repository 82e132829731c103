"""Text features of the local router: hashed word n-grams plus a few hand-made cues.

Pure Python and stdlib hashing (CRC-32), so a prompt is featurised in well under a
millisecond with no model download. The same code builds the training matrix.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib

# Lower-cased words and numbers, plus each punctuation mark as its own token.
TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
# Only the start of a long prompt is hashed: it shows the kind of task, and the
# length cues below still see the whole text.
MAX_HASHED_CHARS = 4000
# Structure cues (options, code, lists, sentences) read this much of a prompt. The
# cap and the line-local patterns below keep featurising linear in the prompt's
# length: `^\s*` under MULTILINE re-scans every following blank line from each
# line start, which made a prompt of newlines quadratic.
MAX_SCANNED_CHARS = 16_000
N_BUCKETS = 2**18

_OPTION = re.compile(r"^[ \t]*\(?[A-D][.)]\s", re.MULTILINE)
_MATH = re.compile(r"[=+*/^<>√∑∫≤≥±∞π]|\\frac|\\sqrt|\$")
_CODE = re.compile(r"```|\bdef |\breturn\b|;[ \t]*$|[{}]|=>|\bfunction\b|\bSELECT\b", re.MULTILINE)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*•]|\d+[.)])[ \t]+", re.MULTILINE)
# Chinese and Japanese full stops and question marks end sentences too.
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|[。！？]")
# Chinese and Japanese write without spaces between words: each Han or kana character
# counts as a word, or a paragraph of them would count as one word and route as the
# shortest of English prompts.
_WIDE_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# What kind of task a prompt asks for, as 0/1 flags read from its start. The exam head
# learns from them; the open formula does not, because what they say differs from one
# source to the next (math helps the strong model on the preference sets, not on MMLU;
# see `tierroute eval --cross-source` and docs/routing.md). Alternations of literal
# words: linear time.
_KINDS = {
    "math": r"\b(?:calculate|compute|solve|equation|integral|derivative|probability|prove|"
    r"theorem|matrix|sum of|how many|percent|ratio|average|formula|algebra|geometry|"
    r"polynomial|prime|factorial)\b",
    "code": r"\b(?:code|function|python|javascript|java|c\+\+|sql|regex|algorithm|implement|"
    r"program|script|bug|compile|api|class|recursion|complexity|array|string|database|query)\b",
    "reason": r"\b(?:why|explain|reason|step by step|analy[sz]e|compare|evaluate|argue|justify|"
    r"implications?|trade-?offs?|critique|design|architecture|strategy|pros and cons)\b",
    "creative": r"\b(?:write|poem|story|song|lyrics|essay|letter|email|slogan|tweet|joke|haiku|"
    r"limerick|rap|blog|creative|fiction|imagine|pretend|role ?play)\b",
    "lookup": r"\A\W{0,3}(?:what|who|when|where|which|is|are|does|do|can|name|define|list|"
    r"give me)\b",
    "simple": r"\b(?:translate|synonym|antonym|spell|capital of|define|definition|meaning of|"
    r"convert|rephrase|paraphrase|summari[sz]e|classify|categori[sz]e|sentiment)\b",
    "constraint": r"\b(?:must|exactly|at least|at most|no more than|without using|only use|"
    r"in \d+ words|format|json|table|bullet)\b",
}
_KIND_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in _KINDS.values())
MAX_KIND_CHARS = 4000

CUE_NAMES = (
    "log_chars",
    "log_words",
    "log_stem_chars",
    "log_option_chars",
    "digit_share",
    "math_share",
    "log_lines",
    "has_options",
    "question_mark",
    "mean_word_len",
    "log_code_marks",
    "log_list_items",
    "log_sentences",
    "log_commas",
    *(f"kind_{name}" for name in _KINDS),
)
# Exam-style questions get their own copy of every cue (and an intercept), as with
# the n-grams: the same length means different things in the two kinds of prompt.
DENSE_NAMES = (
    *(f"open:{name}" for name in CUE_NAMES),
    *(f"exam:{name}" for name in CUE_NAMES),
    "exam",
)


def tokens(text: str) -> list[str]:
    """The tokens hashed for a prompt."""
    return TOKEN.findall(text[:MAX_HASHED_CHARS].lower())


def is_multiple_choice(text: str) -> bool:
    """True for an exam-style question with lettered answer options (A. … B. …)."""
    return len(_OPTION.findall(text[:MAX_SCANNED_CHARS])) >= 2


def hashed_counts(text: str, n_buckets: int = N_BUCKETS) -> dict[int, int]:
    """Bucket -> count of the prompt's unigrams and bigrams.

    A multiple-choice prompt hashes its n-grams under a prefix: exam questions get
    weights of their own, learnt from exam data (what a weak model gets wrong), so that
    knowledge-question difficulty and task-type cues never share one weight per word.
    """
    toks = tokens(text)
    grams = toks + [f"{a} {b}" for a, b in itertools.pairwise(toks)]
    if is_multiple_choice(text):
        grams = [f"\x01{g}" for g in grams]
    counts: dict[int, int] = {}
    crc = zlib.crc32
    for gram in grams:
        h = crc(gram.encode()) % n_buckets
        counts[h] = counts.get(h, 0) + 1
    return counts


def dense_features(text: str) -> list[float]:
    """Length, structure, math and code cues, in the order of DENSE_NAMES."""
    cues = _cue_values(text)
    zeros = [0.0] * len(cues)
    if is_multiple_choice(text):
        return [*zeros, *cues, 1.0]
    return [*cues, *zeros, 0.0]


def _cue_values(full_text: str) -> list[float]:
    n = len(full_text)
    text = full_text[:MAX_SCANNED_CHARS]
    words = text.split()
    first_option = _OPTION.search(text)
    options = _OPTION.findall(text)
    stem = full_text[: first_option.start()] if first_option else full_text
    option_chars = (n - len(stem)) / len(options) if options else 0.0
    digits = sum(ch.isdigit() for ch in text)
    return [
        math.log1p(n),
        math.log1p(_word_count(full_text, text)),
        math.log1p(len(stem)),
        math.log1p(option_chars),
        digits / max(1, len(text)),
        len(_MATH.findall(text)) / max(1, len(words)),
        math.log1p(full_text.count("\n")),
        1.0 if len(options) >= 2 else 0.0,
        1.0 if "?" in stem else 0.0,
        (sum(len(w) for w in words) / len(words)) if words else 0.0,
        math.log1p(len(_CODE.findall(text))),
        math.log1p(len(_LIST_ITEM.findall(text))),
        math.log1p(len(_SENTENCE_END.findall(text))),
        math.log1p(full_text.count(",")),
        *kind_flags(full_text),
    ]


def _word_count(full_text: str, scanned: str) -> int:
    """Space-separated words, plus Han and kana characters (counted in the scanned part and
    scaled to the whole prompt, which keeps a huge prompt's featurising cheap)."""
    wide = len(_WIDE_WORD.findall(scanned))
    if wide and len(full_text) > len(scanned):
        wide = round(wide * len(full_text) / len(scanned))
    return len(full_text.split()) + wide


def kind_flags(text: str) -> list[float]:
    """1.0 for each kind of task (math, code, …) the prompt's start mentions, else 0.0."""
    head = text[:MAX_KIND_CHARS]
    return [1.0 if pattern.search(head) else 0.0 for pattern in _KIND_PATTERNS]

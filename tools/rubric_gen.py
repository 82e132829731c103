"""The rubric set: labelled prompts across the three tiers, written from templates and topics.

`python -m tools.rubric_gen` rewrites `tierroute/data/rubric_prompts.jsonl`
deterministically. Each template family is one kind of task from the lesson's tier
descriptions; the slots vary topic, language and length so that no single keyword
separates the tiers ("write", "explain", "analyse", "design" and "review" occur in
more than one tier). About a quarter is held out by a hash of the prompt (see
`datasets.rubric_split`) and never used in training; `tierroute eval-rubric` reports
the local classifier's accuracy on it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from tools.rubric_slots import (
    ACRONYMS,
    ARCHITECTURES,
    AUDIENCES,
    BOOKS,
    BUGGY_SNIPPETS,
    CODE_TASKS,
    CONCEPT_PAIRS,
    CONCEPTS,
    COUNTRIES,
    CREATIVE_PREMISES,
    DATASETS,
    DEBATES,
    ELEMENTS,
    EMAIL_SUBJECTS,
    HARD_ALGORITHMS,
    HISTORY_EVENTS,
    JSON_SNIPPETS,
    LANGUAGES,
    MIGRATIONS,
    PARAGRAPHS,
    PHRASES,
    POLICIES,
    PROGRAMMING_LANGUAGES,
    RESEARCH_QUESTIONS,
    REVIEWS,
    SQL_TASKS,
    STRATEGY_CASES,
    SYSTEMS_AT_SCALE,
    THEOREMS,
    TICKETS,
    TYPO_SENTENCES,
    UNITS,
    WORDS,
)

Template = Callable[[random.Random], str]


def _pick(rng: random.Random, items: tuple[str, ...] | list[str]) -> str:
    return items[rng.randrange(len(items))]


# --- tier 1 (haiku): simple factual questions, short answers, formatting,
# classification, extraction, conversion, spelling and grammar, short translations.
HAIKU: dict[str, Template] = {
    "capital": lambda r: _pick(
        r,
        [
            "What is the capital of {c}?",
            "Capital city of {c}?",
            "Which city is the capital of {c}? One word is enough.",
        ],
    ).format(c=_pick(r, COUNTRIES)),
    "translate": lambda r: _pick(
        r,
        [
            'Translate "{p}" into {l}.',
            'How do you say "{p}" in {l}?',
            'Give me the {l} for "{p}".',
        ],
    ).format(p=_pick(r, PHRASES), l=_pick(r, LANGUAGES)),
    "units": lambda r: _pick(
        r, ["Convert {n} {a} to {b}.", "How many {b} is {n} {a}?", "{n} {a} in {b}?"]
    ).format(n=r.choice([3, 5, 12, 40, 72, 100, 250, 1.5, 0.75]), **_units(r)),
    "format_json": lambda r: _pick(
        r,
        [
            "Format this JSON: {j}",
            "Pretty-print this JSON with two-space indentation: {j}",
            "Minify this JSON: {j}",
            "Convert this JSON to YAML: {j}",
        ],
    ).format(j=_pick(r, JSON_SNIPPETS)),
    "sentiment": lambda r: _pick(
        r,
        [
            'Classify the sentiment of this review as positive, negative or neutral: "{v}"',
            'Is this review positive or negative? "{v}"',
            'Label the sentiment (positive/negative): "{v}"',
        ],
    ).format(v=_pick(r, REVIEWS)),
    "ticket_label": lambda r: _pick(
        r,
        [
            'Tag this support ticket as billing, bug, feature request or other: "{t}"',
            'Which category fits this ticket best - account, payment, shipping or technical? "{t}"',
        ],
    ).format(t=_pick(r, TICKETS)),
    "spelling": lambda r: _pick(
        r,
        [
            'Fix the spelling in this sentence: "{s}"',
            'Correct the typos: "{s}"',
            'Proofread this line and return it corrected: "{s}"',
        ],
    ).format(s=_pick(r, TYPO_SENTENCES)),
    "chemistry_fact": lambda r: _pick(
        r,
        [
            "What is the chemical symbol for {e}?",
            "What is the atomic number of {e}?",
            "Is {e} a metal?",
        ],
    ).format(e=_pick(r, ELEMENTS)),
    "author": lambda r: _pick(
        r, ["Who wrote {b}?", "Who is the author of {b}?", "In which century was {b} written?"]
    ).format(b=_pick(r, BOOKS)),
    "year": lambda r: _pick(
        r, ["In what year did {h} happen?", "When was {h}?", "What year: {h}?"]
    ).format(h=_pick(r, HISTORY_EVENTS)),
    "acronym": lambda r: _pick(
        r, ["What does {a} stand for?", "Expand the acronym {a}.", "{a} stands for what?"]
    ).format(a=_pick(r, ACRONYMS)),
    "synonym": lambda r: _pick(
        r,
        [
            'Give me a synonym for "{w}".',
            'What is the opposite of "{w}"?',
            'Define "{w}" in one short sentence.',
        ],
    ).format(w=_pick(r, WORDS)),
    "arithmetic": lambda r: _pick(
        r,
        [
            "What is {a} times {b}?",
            "What is {p}% of {b}?",
            "Is {a} a prime number? Answer yes or no.",
            "Round {a}.{b} to the nearest whole number.",
        ],
    ).format(a=r.randrange(11, 400), b=r.randrange(12, 900), p=r.choice([5, 10, 15, 20, 25, 40])),
    "sort_list": lambda r: _pick(
        r,
        [
            "Sort these words alphabetically: {w}",
            "Put these in reverse alphabetical order: {w}",
            "Turn this into a comma-separated list: {w}",
        ],
    ).format(w=" ".join(r.sample(list(WORDS), 5))),
    "extract": lambda r: _pick(
        r,
        [
            'Extract the email addresses from: "Write to {a}@example.com or {b}@mail.org."',
            'Pull out the dates in this sentence: "We met on 3 March and again on {a} June."',
            'List the names mentioned: "{A} called {B} before the meeting with Dana."',
            'Extract the phone number from: "Call {a} at 555-01{n} after five."',
        ],
    ).format(
        a=_pick(r, ["ana", "li", "omar", "kim", "sven", "priya"]),
        b=_pick(r, ["sales", "team", "hello", "jobs"]),
        A=_pick(r, ["Maria", "Tom", "Aiko", "Femi"]),
        B=_pick(r, ["Joe", "Ines", "Raj", "Lea"]),
        n=r.randrange(10, 99),
    ),
    "date_format": lambda r: _pick(
        r,
        [
            "Convert the date {d} to ISO 8601.",
            "Format {d} as DD/MM/YYYY.",
            "What day of the week was {d}?",
        ],
    ).format(d=_pick(r, ["March 4, 2021", "12 Jan 1999", "2024-07-19", "Oct 31 2010"])),
    "csv_table": lambda r: _pick(
        r,
        [
            "Convert this CSV to a markdown table:\nname,age\n{a},3{n}\n{b},4{n}",
            "Turn this CSV row into JSON: id,city\n{n},{c}",
        ],
    ).format(
        a=_pick(r, ["Ana", "Bo", "Chen"]),
        b=_pick(r, ["Dev", "Eli", "Fay"]),
        n=r.randrange(0, 9),
        c=_pick(r, ["Oslo", "Lima", "Pune", "Graz"]),
    ),
    "case_change": lambda r: _pick(
        r,
        [
            'Convert "{s}" to title case.',
            'Write "{s}" in uppercase.',
            'Turn "{s}" into snake_case.',
        ],
    ).format(s=_pick(r, PHRASES).lower()),
    "language_id": lambda r: 'Which language is this? "{p}"'.format(
        p=_pick(r, ["Merci beaucoup", "Danke schön", "Obrigado", "Grazie mille", "Dziękuję"])
    ),
    "quick_fact": lambda r: _pick(
        r,
        [
            "How many legs does a spider have?",
            "What is the boiling point of water in Fahrenheit?",
            "Which planet is closest to the sun?",
            "How many minutes are in a day?",
            "What is the largest ocean on Earth?",
            "What currency does Japan use?",
            "How many continents are there?",
            "What is the freezing point of water in Celsius?",
            "Which gas do plants absorb from the air?",
            "What is the tallest mountain in the world?",
        ],
    ),
    "grammar": lambda r: _pick(
        r,
        [
            'Correct the grammar: "She don\'t like {w}."',
            'Is this sentence grammatical? "Me and him went to the {w} yesterday."',
            'Fix the verb agreement: "The list of {w} are on the table."',
        ],
    ).format(w=_pick(r, ["apples", "meetings", "the store", "books", "emails"])),
}


def _units(r: random.Random) -> dict[str, str]:
    a, b = _pick(r, [f"{x}|{y}" for x, y in UNITS]).split("|")
    return {"a": a, "b": b}


# --- tier 2 (sonnet): a well-defined function, explaining a concept, summarising,
# standard analysis, drafting an email or document, debugging a snippet.
SONNET: dict[str, Template] = {
    "write_function": lambda r: _pick(
        r,
        [
            "Write a {l} function that {t}.",
            "Write a {l} function to {t2}, with type hints and a docstring.",
            "Write a {l} function to {t2}",
            "I need a {l} function to {t2}.",
            "Can you write a small {l} helper that {t}?",
            "Implement a function in {l} that {t}.",
        ],
    ).format(l=_pick(r, PROGRAMMING_LANGUAGES), **_code_task(r)),
    "explain_concept": lambda r: _pick(
        r,
        [
            "Explain how {c} works, with a short example.",
            "Explain {c} to {a}.",
            "How does {c} work? Keep it to a few paragraphs.",
            "Can you explain the idea behind {c} and when to use it?",
            "Explain {c}.",
            "Explain {c} briefly.",
        ],
    ).format(c=_pick(r, CONCEPTS), a=_pick(r, AUDIENCES)),
    "compare_concepts": lambda r: _pick(
        r,
        [
            "Explain the difference between {a} and {b}.",
            "Compare {a} and {b} in a short table with pros and cons.",
            "When should I use {a} instead of {b}?",
            "{a} vs {b}: what is the difference?",
        ],
    ).format(**_pair(r)),
    "summarise_text": lambda r: _pick(
        r,
        [
            "Summarize this paragraph in two sentences:\n{p}",
            "Give me the key points of this text as bullets:\n{p}",
            "Write a one-paragraph summary of the following:\n{p}",
        ],
    ).format(p=_pick(r, PARAGRAPHS)),
    "summarise_topic": lambda r: _pick(
        r,
        [
            "Summarize the main causes of {h} in one paragraph.",
            "Give a short overview of {h} for a history class.",
            "Summarize the arguments for and against {d}.",
            "Summarize {h}.",
        ],
    ).format(h=_pick(r, HISTORY_EVENTS), d=_pick(r, DEBATES)),
    "email": lambda r: _pick(
        r,
        [
            "Draft a polite email to {w} about {s}.",
            "Write a short, friendly email to {w} regarding {s}.",
            "Help me write a message to {w} about {s}; keep it professional.",
        ],
    ).format(
        w=_pick(r, ["my manager", "a client", "the landlord", "my team", "a recruiter"]),
        s=_pick(r, EMAIL_SUBJECTS),
    ),
    "debug_snippet": lambda r: _pick(
        r,
        [
            "Debug this snippet and explain the fix:\n{c}",
            "Why does this code fail?\n{c}",
            "Find the bug in this code:\n{c}",
        ],
    ).format(c=_pick(r, BUGGY_SNIPPETS)),
    "sql": lambda r: _pick(
        r,
        [
            "Write a SQL query that {t}.",
            "Give me a Postgres query to {t}.",
            "How would I write SQL that {t}?",
        ],
    ).format(t=_pick(r, SQL_TASKS)),
    "unit_tests": lambda r: _pick(
        r,
        [
            "Write unit tests with pytest for a function that {t}.",
            "Write a few Jest tests for a function that {t}.",
        ],
    ).format(t=_code_task(r)["t"]),
    "regex": lambda r: _pick(
        r,
        [
            "Write a regular expression that matches {x} and explain each part.",
            "Give me a regex for {x}, with a couple of test cases.",
        ],
    ).format(
        x=_pick(
            r,
            [
                "US ZIP codes",
                "IPv4 addresses",
                "ISO dates",
                "hex colour codes",
                "UK postcodes",
                "semantic version numbers",
                "email addresses",
            ],
        )
    ),
    "data_analysis": lambda r: _pick(
        r,
        [
            "Analyze this sales data and describe the trend: {d}",
            "Here are monthly figures: {d}. What is the average, and what stands out?",
            "Look at these numbers and describe any seasonality: {d}",
        ],
    ).format(d=_pick(r, DATASETS)),
    "howto_steps": lambda r: _pick(
        r,
        [
            "Outline the steps to {t}.",
            "Give me step-by-step instructions to {t}.",
            "What is the procedure to {t}?",
        ],
    ).format(
        t=_pick(
            r,
            [
                "set up a Python virtual environment and install dependencies",
                "configure SSH keys for GitHub",
                "deploy a static site to a CDN",
                "rotate a database password without downtime in a small app",
                "set up a cron job that runs a backup script nightly",
                "create a pivot table in a spreadsheet",
                "containerise a Flask app with Docker",
            ],
        )
    ),
    "script": lambda r: _pick(
        r,
        [
            "Write a bash script that {t}.",
            "Write a small Python script that {t}.",
        ],
    ).format(
        t=_pick(
            r,
            [
                "backs up a directory into a dated tar.gz file",
                "renames every .jpeg file in a folder to .jpg",
                "counts the lines of code per file extension in a repo",
                "downloads a list of URLs and reports failures",
                "finds the ten largest files under a directory",
                "watches a log file and prints lines containing ERROR",
            ],
        )
    ),
    "refactor": lambda r: _pick(
        r,
        [
            "Refactor this function to be more readable:\n{c}",
            "Review this code and suggest improvements:\n{c}",
        ],
    ).format(c=_pick(r, BUGGY_SNIPPETS)),
    "document": lambda r: _pick(
        r,
        [
            "Write a README section explaining how to install and run {x}.",
            "Write a short product description for {y}.",
            "Draft a one-page meeting agenda for {z}.",
            "Write a cover letter paragraph for a {j} role.",
        ],
    ).format(
        x=_pick(r, ["a CLI tool", "a Django app", "a Node.js API", "a Rust library"]),
        y=_pick(
            r, ["a stainless-steel water bottle", "noise-cancelling headphones", "a desk lamp"]
        ),
        z=_pick(r, ["a sprint planning session", "a quarterly review", "a project kickoff"]),
        j=_pick(r, ["junior data analyst", "backend developer", "product designer"]),
    ),
    "calculation_steps": lambda r: _pick(
        r,
        [
            "Calculate the monthly payment on a ${n},000 loan at {p}% over {y} years, "
            "showing the steps.",
            "If I invest ${n},000 at {p}% compounded annually, how much after {y} years? "
            "Show the working.",
        ],
    ).format(n=r.randrange(5, 300), p=r.choice([3, 4.5, 5, 6, 7.2]), y=r.choice([3, 5, 10, 15])),
    "study_plan": lambda r: _pick(
        r,
        [
            "Make a {w}-week study plan to learn {s}.",
            "Create a weekly plan for learning {s} in {w} weeks, with resources.",
        ],
    ).format(
        w=r.choice([4, 6, 8, 12]),
        s=_pick(r, ["basic SQL", "conversational Spanish", "React", "statistics", "Git"]),
    ),
    "action_items": lambda r: (
        "Turn these meeting notes into action items with owners:\n"
        "- {a} to update the roadmap\n- budget review pending, {b} to follow up\n"
        "- launch moved to {m}"
    ).format(
        a=_pick(r, ["Sam", "Priya", "Leo"]),
        b=_pick(r, ["Ana", "Ken"]),
        m=_pick(r, ["May", "June", "next quarter"]),
    ),
}


def _code_task(r: random.Random) -> dict[str, str]:
    task = _pick(r, CODE_TASKS)
    verb, rest = task.split(" ", 1)
    # "merges two lists" -> "merge two lists" for "a function to ..." phrasings.
    base = verb[:-3] + "y" if verb.endswith("ies") else verb.removesuffix("s")
    return {"t": task, "t2": f"{base} {rest}"}


def _pair(r: random.Random) -> dict[str, str]:
    a, b = _pick(r, [f"{x}|{y}" for x, y in CONCEPT_PAIRS]).split("|")
    return {"a": a, "b": b}


# --- tier 3 (opus): architecture design and review, multi-step reasoning, research
# synthesis, trade-offs across many constraints, proofs, security audits, long
# strategic plans, creative writing, nuanced analysis, advanced math and code.
OPUS: dict[str, Template] = {
    "architecture_review": lambda r: _pick(
        r,
        [
            "Review this distributed system architecture for scalability bottlenecks, "
            "consistency trade-offs, and failure modes: {a}",
            "Review the architecture below and identify single points of failure, "
            "data-loss risks and how it behaves under a regional outage: {a}",
            "Here is our current setup: {a}. Critique it for scale, consistency and "
            "operability, and propose a better design.",
        ],
    ).format(a=_pick(r, ARCHITECTURES)),
    "system_design": lambda r: _pick(
        r,
        [
            "Design a system for {s}, covering data model, consistency, failover and cost, "
            "and justify each trade-off.",
            "Design the architecture of {s}; compare at least two approaches and explain "
            "which you would choose under a tight budget.",
            "How would you build {s}? Walk through capacity estimates, sharding, caching "
            "and failure handling.",
        ],
    ).format(s=_pick(r, SYSTEMS_AT_SCALE)),
    "proof": lambda r: _pick(
        r,
        [
            "Prove that {t}.",
            "Give a rigorous proof that {t}, and explain where each assumption is used.",
            "Prove or disprove: {t}. Then discuss how the argument generalises.",
        ],
    ).format(t=_pick(r, THEOREMS)),
    "research_synthesis": lambda r: _pick(
        r,
        [
            "Synthesize the research on {q}, weigh the conflicting studies, and recommend "
            "a policy.",
            "Review the literature on {q}: where do the studies disagree, why, and what "
            "would a careful reader conclude?",
            "Write a research synthesis on {q}, with the strength of evidence for each claim.",
        ],
    ).format(q=_pick(r, RESEARCH_QUESTIONS)),
    "security_audit": lambda r: _pick(
        r,
        [
            "Perform a security audit of {s} and produce a threat model with mitigations.",
            "Threat-model {s}: enumerate attackers, assets and attack paths, and rank the risks.",
            "Audit {s} for vulnerabilities and propose a hardened design.",
        ],
    ).format(
        s=_pick(
            r,
            [
                "an OAuth 2.0 login flow that keeps refresh tokens in local storage",
                "a firmware update system for medical devices",
                "a multi-tenant SaaS API that uses row-level security in Postgres",
                "a CI/CD pipeline that deploys to production with long-lived cloud keys",
                "a mobile banking app with offline payments",
                "a webhook receiver that executes user-supplied templates",
            ],
        )
    ),
    "strategy": lambda r: _pick(
        r,
        [
            "Develop a {n}-year strategic plan for {c}, including pricing, hiring, "
            "risks and milestones.",
            "Build a long-term strategy for {c}: market analysis, competitive response, "
            "financing and scenario planning.",
        ],
    ).format(n=r.choice([2, 3, 5]), c=_pick(r, STRATEGY_CASES)),
    "migration_plan": lambda r: _pick(
        r,
        [
            "Plan a zero-downtime migration from {m}, with sequencing, data validation, "
            "rollback and risk assessment.",
            "We need to move from {m}. Lay out a multi-step migration plan with the "
            "trade-offs at every stage.",
        ],
    ).format(m=_pick(r, MIGRATIONS)),
    "creative_story": lambda r: _pick(
        r,
        [
            "Write a short story about {p}, told in a non-linear structure with an "
            "unreliable narrator.",
            "Write the opening chapter of a novel in which {p}; establish voice, tension "
            "and a subtle foreshadowing of the ending.",
            "Write a literary short story about {p} that ends on an ambiguous note.",
        ],
    ).format(p=_pick(r, CREATIVE_PREMISES)),
    "creative_poem": lambda r: _pick(
        r,
        [
            "Write a sonnet about {p} that turns on a metaphor from {d}, keeping strict "
            "iambic pentameter.",
            "Compose a poem about {p} in three voices that contradict each other, "
            "with a final stanza that reconciles them.",
        ],
    ).format(
        p=_pick(r, CREATIVE_PREMISES),
        d=_pick(r, ["astronomy", "bookkeeping", "sailing", "chess", "beekeeping"]),
    ),
    "nuanced_analysis": lambda r: _pick(
        r,
        [
            "Analyze the ethical, economic and legal trade-offs of {p}, considering all "
            "stakeholders, and argue for a position.",
            "Critically evaluate {p}: steelman both sides, identify hidden assumptions, "
            "and explain what evidence would change your mind.",
            "Assess the second-order effects of {p} over the next decade.",
        ],
    ).format(p=_pick(r, POLICIES)),
    "advanced_algorithm": lambda r: _pick(
        r,
        [
            "Design an algorithm for {a} and prove its correctness and complexity.",
            "Implement {a} in {l} and argue why it is correct under concurrency.",
            "Derive an efficient algorithm for {a}; compare it with the naive approach "
            "and prove the bound.",
        ],
    ).format(a=_pick(r, HARD_ALGORITHMS), l=_pick(r, PROGRAMMING_LANGUAGES)),
    "multi_step_reasoning": lambda r: _pick(
        r,
        [
            "Reason step by step through the scheduling of {n} interdependent tasks with "
            "shared resource limits, find the critical path, and the cheapest way to "
            "shorten it by 20%.",
            "A factory has {n} machines with different failure rates and repair crews on "
            "two shifts. Model the throughput, find the bottleneck, and recommend where "
            "to invest under a fixed budget.",
            "Work out, step by step, an allocation of {n} engineers across four projects "
            "with conflicting deadlines, dependencies and skill constraints, and justify it.",
        ],
    ).format(n=r.choice([7, 9, 12, 15, 20])),
    "concurrency_debug": lambda r: _pick(
        r,
        [
            "Our {l} service deadlocks once a week under load; threads wait on a "
            "connection pool and a cache lock. Diagnose the likely race conditions and "
            "design a correct locking protocol.",
            "Find the race condition in a distributed cache invalidation scheme that uses "
            "TTLs plus pub/sub, and propose a protocol that never serves stale reads.",
        ],
    ).format(l=_pick(r, PROGRAMMING_LANGUAGES)),
    "math_derivation": lambda r: _pick(
        r,
        [
            "Derive {f} from first principles and discuss when the approximation breaks down.",
            "Derive {f}, then explain the physical intuition behind each term.",
        ],
    ).format(
        f=_pick(
            r,
            [
                "the Black-Scholes equation",
                "the Navier-Stokes equations for an incompressible fluid",
                "the Schwarzschild radius",
                "the closed form of the Fibonacci numbers using generating functions",
                "the central limit theorem for i.i.d. variables with finite variance",
            ],
        )
    ),
    "financial_model": lambda r: _pick(
        r,
        [
            "Build a financial model for {c} with three scenarios, a sensitivity analysis "
            "on the two riskiest assumptions, and a recommendation.",
            "Should {c} raise debt or equity next year? Model both paths over five years "
            "and weigh dilution, covenants and downside risk.",
        ],
    ).format(c=_pick(r, STRATEGY_CASES)),
    "legal_analysis": lambda r: _pick(
        r,
        [
            "Analyse whether {x} could be challenged under competition law in the EU and "
            "the US, comparing the doctrines and likely outcomes.",
            "Weigh the liability exposure of {x} under product-liability, contract and "
            "data-protection law, and advise on structuring it.",
        ],
    ).format(
        x=_pick(
            r,
            [
                "an exclusive data-sharing deal between two cloud providers",
                "a self-driving delivery robot that injures a pedestrian",
                "an AI hiring tool that screens out older applicants",
                "a subscription app that makes cancellation deliberately hard",
            ],
        )
    ),
    "experiment_design": lambda r: _pick(
        r,
        [
            "Design a rigorous study to test whether {q} has a causal effect, addressing "
            "confounders, sample size, ethics and how you would analyse the results.",
            "Critique the methodology of studies on {q} and propose an experiment that "
            "would settle the question.",
        ],
    ).format(q=_pick(r, RESEARCH_QUESTIONS)),
    "historical_interpretation": lambda r: _pick(
        r,
        [
            "Compare the competing historical interpretations of {h}, weigh the evidence "
            "behind each, and explain which you find most persuasive and why.",
            "Was {h} inevitable? Construct the strongest arguments on both sides using "
            "economic, political and cultural factors.",
        ],
    ).format(h=_pick(r, HISTORY_EVENTS)),
    "compiler_design": lambda r: _pick(
        r,
        [
            "Design a {x} and prove that it preserves program semantics.",
            "Write {x} in {l}, and explain the invariants that make it correct.",
        ],
    ).format(
        x=_pick(
            r,
            [
                "a constant-folding and dead-code elimination pass for a small SSA IR",
                "a type inference algorithm for a language with generics and subtyping",
                "a garbage collector with incremental marking",
                "a query planner that chooses join orders with cost estimates",
            ],
        ),
        l=_pick(r, PROGRAMMING_LANGUAGES),
    ),
}

FAMILIES: dict[str, dict[str, Template]] = {"haiku": HAIKU, "sonnet": SONNET, "opus": OPUS}
PER_FAMILY = 14
SEED = 20261127


def generate(per_family: int = PER_FAMILY, seed: int = SEED) -> list[dict[str, str]]:
    """Every family's prompts, deduplicated, in a stable order."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for tier, families in FAMILIES.items():
        for family, template in families.items():
            made = 0
            for _ in range(per_family * 6):
                prompt = template(rng)
                if prompt in seen:
                    continue
                seen.add(prompt)
                rows.append({"prompt": prompt, "tier": tier, "family": f"{tier}/{family}"})
                made += 1
                if made == per_family:
                    break
    return rows


def main() -> None:
    """Write the rubric set into the package's data directory."""
    from tierroute.training.datasets import rubric_split

    out = Path(__file__).resolve().parents[1] / "tierroute" / "data" / "rubric_prompts.jsonl"
    rows = generate()
    with out.open("w") as fh:
        for row in rows:
            row["split"] = rubric_split(row["prompt"])
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} prompts to {out}")


if __name__ == "__main__":
    main()

"""The README stays short, and no link in the README or docs/ points at nothing."""

from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
MAX_README_LINES = 250

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# [text](target) and ![alt](target), with an optional "title"; text may hold brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def _prose(text: str) -> str:
    """The markdown without code blocks and code spans, where brackets are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _links(path: Path) -> list[str]:
    prose = _prose(path.read_text(encoding="utf-8"))
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in ("L", "N"))
    return kept.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, numbered as GitHub numbers repeats."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        anchors.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return anchors


def _relative_links() -> list[tuple[Path, str]]:
    return [
        (source, link)
        for source in [README, *DOCS]
        for link in _links(source)
        if not link.lower().startswith(EXTERNAL)
    ]


def test_the_readme_is_short_enough_for_a_newcomer() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


def test_the_link_finder_sees_links_and_skips_code() -> None:
    # Guards the check below: a finder that found nothing would pass any docs.
    sample = "[a](docs/x.md) ![b](y.png#z) `[c](no.md)`\n```\n[d](no.md)\n```\n[e]: ref.md\n"
    prose = _prose(sample)
    assert INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose) == [
        "docs/x.md",
        "y.png#z",
        "ref.md",
    ]
    assert _slug("Shadow judging: learning from your `own` traffic") == (
        "shadow-judging-learning-from-your-own-traffic"
    )
    assert len(_relative_links()) > 10


@pytest.mark.parametrize(
    ("source", "link"),
    _relative_links(),
    ids=lambda value: value.name if isinstance(value, Path) else str(value),
)
def test_every_relative_link_resolves_to_a_file_in_the_repo(source: Path, link: str) -> None:
    target, _, anchor = link.partition("#")
    path = (source.parent / target).resolve() if target else source
    assert path.is_relative_to(REPO), f"{source.name}: {link} leaves the repo"
    assert path.exists(), f"{source.name}: {link} points at nothing"
    if anchor and path.suffix == ".md":
        assert anchor in _anchors(path), f"{source.name}: no heading for #{anchor} in {path.name}"


def test_every_setting_is_in_the_configuration_reference() -> None:
    # Parsed, not imported, so the check needs no database, SDK or environment.
    tree = ast.parse((REPO / "tierroute" / "config.py").read_text(encoding="utf-8"))
    settings = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Settings"
    )
    fields = [
        node.target.id
        for node in settings.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    ]
    reference = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    # The SDK's own variables are read without the prefix.
    variables = [
        name.upper() if name.startswith("anthropic_") else f"TIERROUTE_{name.upper()}"
        for name in fields
    ]
    missing = [variable for variable in variables if f"`{variable}`" not in reference]
    assert len(fields) > 30
    assert not missing, f"settings missing from docs/configuration.md: {missing}"

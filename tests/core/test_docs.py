"""The README stays a short front door, and every relative link in it and in docs/ resolves.

Links are checked the way GitHub renders them: a path relative to the file that holds the
link, and an `#anchor` must name a heading of the target file (GitHub's slug: lower case,
punctuation dropped, each space a `-`, `-1`, `-2`, … for repeated headings).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MARKDOWN = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 200
#: What the README must link to: the manual it is the front door of.
FRONT_DOOR_LINKS = ["engine.md", "api.md", "operations.md", "benchmarks.md", "ARCHITECTURE.md"]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")


def _prose(text: str) -> str:
    """The text outside fenced code blocks (links and headings there are not rendered)."""
    return FENCE.sub("", text)


def _links(path: Path) -> list[str]:
    prose = CODE_SPAN.sub("", _prose(path.read_text()))
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading's text (before de-duplication)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result: set[str] = set()
    for _, heading in HEADING.findall(_prose(path.read_text())):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def test_github_slug_follows_githubs_rules() -> None:
    assert github_slug("Submit path: before → after") == "submit-path-before--after"
    assert github_slug("Metrics: `/metrics`") == "metrics-metrics"
    assert github_slug("Command line (`clipper cut`, `clipper probe`)") == (
        "command-line-clipper-cut-clipper-probe"
    )
    assert github_slug("The production install, checked: `make check-install`") == (
        "the-production-install-checked-make-check-install"
    )


def test_readme_is_a_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail into docs/"
    )


def test_readme_links_every_doc() -> None:
    targets = {
        (README.parent / link.split("#", 1)[0]).resolve()
        for link in _links(README)
        if not SCHEME.match(link) and not link.startswith("#")
    }
    missing = [name for name in FRONT_DOOR_LINKS if (DOCS / name).resolve() not in targets]
    assert missing == [], f"README.md does not link docs/{', docs/'.join(missing)}"


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for link in _links(path):
        if SCHEME.match(link):
            continue
        target_text, _, anchor = link.partition("#")
        target = (path.parent / target_text).resolve() if target_text else path
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.name}")
    assert broken == [], f"{path.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)

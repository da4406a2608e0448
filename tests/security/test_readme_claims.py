"""Every claim of README's "Security and limits" section is quoted by a test that proves it.

A test names the claim it proves in its docstring as ``README: 'words'``,
the words copied from README (``...`` stands for words left out; backticks
and case are ignored). This module checks both directions: each paragraph,
table row and bullet of the section is quoted by at least one test, and each
quote in a test is still in README, so neither can drift from the other.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
QUOTE = re.compile(r"README: '(.+?)'", re.DOTALL)


def normal(text: str) -> str:
    return " ".join(text.replace("`", "").split()).lower()


def security_claims() -> list[str]:
    """The section's paragraphs, table rows and bullets, one claim each."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Security and limits", 1)[1].split("\n## ", 1)[0]
    claims: list[str] = []
    for block in section.strip().split("\n\n"):
        lines = block.splitlines()
        if lines[0].startswith("|"):
            claims += [line for line in lines[2:]]  # skip the header and the rule
        elif lines[0].startswith("- "):
            claims += ["\n".join(item) for item in _bullets(lines)]
        else:
            claims.append(block)
    return claims


def _bullets(lines: list[str]) -> list[list[str]]:
    items: list[list[str]] = []
    for line in lines:
        if line.startswith("- "):
            items.append([line[2:]])
        else:
            items[-1].append(line)
    return items


def test_quotes() -> list[tuple[str, str]]:
    """Every ``README: '...'`` quote in a test's docstring, with the test that makes it."""
    found = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                docstring = ast.get_docstring(node) or ""
                for quote in QUOTE.findall(docstring):
                    if len(normal(quote.replace("...", " ")).split()) >= 3:  # not the "..." above
                        found.append((f"{path.relative_to(REPO)}::{node.name}", quote))
    return found


test_quotes.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def quoted_in(quote: str, text: str) -> bool:
    """Whether *quote* (``...`` for elided words) appears in *text*, in order."""
    position = 0
    for part in normal(quote).split("..."):
        part = part.strip()
        found = normal(text).find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return True


CLAIMS = security_claims()


@pytest.mark.parametrize("claim", CLAIMS, ids=[normal(c)[:40] for c in CLAIMS])
def test_every_security_claim_is_quoted_by_a_test(claim):
    quoting = [test for test, quote in test_quotes() if quoted_in(quote, claim)]
    assert quoting, f"no test docstring quotes this README claim:\n{claim}"


def test_every_quote_is_still_in_the_readme():
    readme = (REPO / "README.md").read_text()
    stale = [(test, quote) for test, quote in test_quotes() if not quoted_in(quote, readme)]
    assert not stale, stale

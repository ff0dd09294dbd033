"""Text statistics: word counts and the most frequent words of a document."""

from __future__ import annotations

import re
from collections import Counter

from pydantic import BaseModel, Field

from worker import JobContext, task

# Letters, optionally joined by an apostrophe (straight or typographic) or a hyphen.
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")


class TextIn(BaseModel):
    """Payload of :func:`word_stats`: the text (at most 1 MB) and how many top words to return."""

    text: str = Field(max_length=1_000_000)
    top: int = Field(10, ge=1, le=100)


class WordCount(BaseModel):
    """One word and how often it occurs."""

    word: str
    count: int


class TextStats(BaseModel):
    """Counts for one text; ``top`` is sorted by count, then alphabetically."""

    characters: int
    lines: int
    words: int
    unique_words: int
    top: list[WordCount]


def text_stats(text: str, top: int) -> TextStats:
    """The statistics of ``text`` (pure; the task is a thin wrapper)."""
    words = [w.lower() for w in _WORD.findall(text)]
    counts = Counter(words)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    return TextStats(
        characters=len(text),
        lines=text.count("\n") + 1 if text else 0,
        words=len(words),
        unique_words=len(counts),
        top=[WordCount(word=w, count=c) for w, c in ranked],
    )


@task(timeout_s=30)
async def word_stats(ctx: JobContext, payload: TextIn) -> TextStats:
    """Count characters, lines and words, and find the most frequent words."""
    return text_stats(payload.text, payload.top)

"""Writes one generated section of Docs/benchmarks.md, between its start and end markers."""
import os

BENCHMARKS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "Docs", "benchmarks.md"))


def replace_section(start, end, heading, lines):
    """Replaces the text from `start` to `end` with `lines` (which begin with `start` and end
    with `end`), or appends it under `heading` when the markers are not there yet."""
    with open(BENCHMARKS) as handle:
        text = handle.read()
    block = "\n".join(lines)
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n" + block + "\n"
    with open(BENCHMARKS, "w") as handle:
        handle.write(text)

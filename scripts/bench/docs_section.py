"""Writes the generated parts of Docs/benchmarks.md: a section between its start and end
markers, and a plot in Docs/images."""
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


def save_figure(figure, filename):
    """Lays out `figure` and saves it as Docs/images/`filename`."""
    figure.tight_layout()
    images = os.path.join(os.path.dirname(BENCHMARKS), "images")
    os.makedirs(images, exist_ok=True)
    figure.savefig(os.path.join(images, filename), dpi=110)

"""A mission's brief as the mission screen shows it (the Markdown file, lightly prepared).

The same text is written into the workspace as <package>/brief.md (grader.workspace.sync_briefs),
so the learner can read it beside the code in their editor.
"""
from __future__ import annotations

from grader.missions import Mission


def brief_markdown(mission: Mission) -> str:
    try:
        return label_code_fences(mission.brief_path.read_text(encoding="utf-8", errors="replace"))
    except OSError as e:
        return f"# {mission.title}\n\n*The brief could not be read: {e}*"


def label_code_fences(markdown: str, default: str = "text") -> str:
    """Give every unlabelled ``` fence a language. Unlabelled fences make Textual's Markdown guess
    one with pygments, which loads every lexer (over a second on first use)."""
    out, inside = [], None
    for line in markdown.splitlines(keepends=True):
        stripped = line.lstrip()
        fence = stripped[:3] if stripped.startswith(("```", "~~~")) else None
        if fence and inside is None:
            marker = stripped[:len(stripped) - len(stripped.lstrip(fence[0]))]
            if not stripped[len(marker):].strip():
                line = line[:len(line) - len(stripped)] + marker + default + ("\n" if line.endswith("\n") else "")
            inside = marker
        elif fence and inside is not None and stripped.rstrip().startswith(inside) \
                and not stripped.strip().lstrip(inside[0]):
            inside = None
        out.append(line)
    return "".join(out)

"""The parameters page: every chapter parameter, its value in each profile, its comment, and how to change it.

Generated at build time from each chapter's ``parameters`` cell and ``notebooks/profiles.yml`` into the
staged source tree as ``book/parameters.md`` (the page ``_toc.yml`` lists), so it never goes stale.
"""

from __future__ import annotations

import ast
import io
import json
import tokenize
from pathlib import Path
from typing import Any

from gpa_lib.book.project import GENERATED_PAGES, BookProject, Notebook

#: The toc entry of the generated page.
PAGE = "book/parameters"
assert PAGE in GENERATED_PAGES
#: Profiles shown first, in this order; any others follow in profiles.yml order.
PROFILE_ORDER = ("full", "smoke", "gpu")
PROFILE_COMMENT = "the profile the values come from; the runner sets it"


def parameter_comments(source: Path) -> dict[str, str]:
    """Name -> comment of each assignment in the ``parameters`` cell (trailing, inside, or the lines above)."""
    import jupytext

    nb = jupytext.read(source)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(cell.source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    found: dict[str, str] = {}
    previous_end = 0
    for stmt in ast.parse(cell.source).body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        inside = [comments[n] for n in range(stmt.lineno, stmt.end_lineno + 1) if n in comments]
        above = [comments[n] for n in range(previous_end + 1, stmt.lineno) if n in comments]
        previous_end = stmt.end_lineno
        text = " ".join(above + inside)
        found[targets[0].id] = text
    return found


def profile_columns(project: BookProject) -> list[str]:
    names = project.profile_names()
    return [p for p in PROFILE_ORDER if p in names] + [p for p in names if p not in PROFILE_ORDER]


def values_by_profile(project: BookProject, nb: Notebook) -> dict[str, dict[str, Any]]:
    """Profile -> parameter -> the value the chapter runs with under that profile."""
    return {
        profile: nb.parameters | project.parameters_for(nb, profile)
        for profile in profile_columns(project)
    }


def example_value(name: str, default: Any, values: list[Any]) -> Any:
    """Another value to show in the command line: a profile's value if one differs, else a nearby one."""
    for value in values:
        if value != default:
            return value
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default * 2 if default else 1
    if isinstance(default, float):
        return default * 2 if default else 0.5
    return default


def papermill_option(name: str, value: Any) -> str:
    """``-p name value`` for a number, word or boolean; ``-y 'name: [...]'`` (YAML) for a list."""
    if isinstance(value, list | dict):
        return f"-y '{name}: {json.dumps(value)}'"
    if isinstance(value, str):
        return f"-p {name} {value}" if value and value.isidentifier() else f"-p {name} '{value}'"
    return f"-p {name} {value}"


def papermill_command(nb: Notebook, project: BookProject, name: str, value: Any) -> str:
    """Re-run one chapter with ``name`` set to ``value`` (on the paired .ipynb that jupytext writes)."""
    rel = nb.source.relative_to(project.root).with_suffix(".ipynb").as_posix()
    cwd = nb.source.parent.relative_to(project.root).as_posix()
    return (
        f"papermill {rel} _build/{nb.name}-{name}.ipynb --cwd {cwd} {papermill_option(name, value)}"
    )


def _cell(text: str) -> str:
    return text.replace("\n", " ")


def _value(value: Any) -> str:
    return f"`{_cell(json.dumps(value) if not isinstance(value, str) else repr(value))}`"


def render_parameters_page(project: BookProject) -> str:
    """The Markdown of the page: one section per chapter, one table row per parameter."""
    columns = profile_columns(project)
    lines = [
        "# Parameters",
        "",
        "Every chapter takes its parameters from one cell tagged `parameters`, which holds the `full`",
        "values; `notebooks/profiles.yml` overrides some of them for the other profiles. This page is",
        "generated from both when the book is built. A value in **bold** differs from `full`.",
        "",
        "To re-run a chapter with another value, write its paired notebook once with Jupytext, then give",
        "papermill the value (`-p` for a number, a word or a boolean, `-y` with YAML for a list):",
        "",
        "```bash",
        "jupytext --to ipynb notebooks/01_gpa_complexity.py   # writes notebooks/01_gpa_complexity.ipynb",
        "papermill notebooks/01_gpa_complexity.ipynb _build/out.ipynb --cwd notebooks -p profile smoke",
        "```",
        "",
        "Values set by hand are not part of any profile: `python -m gpa_lib.book run` runs the",
        "profiles, and its execution cache ignores notebooks written by hand.",
        "",
    ]
    for nb in project.notebooks():
        if nb.is_summary:
            continue
        values = values_by_profile(project, nb)
        comments = parameter_comments(nb.source)
        lines += [
            f"## {_title(nb)}",
            "",
            f"Source: `{nb.source.relative_to(project.root).as_posix()}`. Prepare once: "
            f"`jupytext --to ipynb {nb.source.relative_to(project.root).as_posix()}`.",
            "",
            "```{list-table}",
            ":header-rows: 1",
            f":widths: 22 {' '.join(['14'] * len(columns))} 36",
            "",
            "* - parameter",
            *(f"  - `{p}`" for p in columns),
            "  - what it is",
        ]
        commands = []
        for name, default in nb.parameters.items():
            lines.append(f"* - `{name}`")
            for profile in columns:
                shown = _value(values[profile][name])
                lines.append(
                    f"  - **{shown}**" if values[profile][name] != default else f"  - {shown}"
                )
            comment = comments.get(name) or (PROFILE_COMMENT if name == "profile" else "—")
            lines.append(f"  - {_cell(comment)}")
            other = example_value(name, default, [values[p][name] for p in columns])
            commands.append(papermill_command(nb, project, name, other))
        lines.append("```")
        lines += [
            "",
            "Re-run the chapter with one value changed, one line per parameter:",
            "",
            "```bash",
        ]
        lines += commands
        lines += ["```", ""]
    return "\n".join(lines)


def _title(nb: Notebook) -> str:
    """The chapter's first Markdown heading, else its file name."""
    import jupytext

    for cell in jupytext.read(nb.source).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return nb.name


def write_parameters_page(project: BookProject, src: Path) -> Path:
    """Write the page into the staged source tree ``src`` (``book/parameters.md``)."""
    path = src / f"{PAGE}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_parameters_page(project))
    return path

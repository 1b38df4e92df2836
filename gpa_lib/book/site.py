"""Launch and download buttons that open a runnable chapter.

Jupyter Book points every button at ``<page>.ipynb`` in the repository, which holds only the
percent-format ``.py`` sources. The build therefore:

- publishes each executed notebook next to its HTML page (``notebooks/01_gpa_complexity.ipynb`` beside
  ``notebooks/01_gpa_complexity.html``), with a first cell that installs the library on Google Colab;
- points the download button at that file, and the Colab button at the same path on the branch that
  the book workflow pushes those notebooks to (``gpa_book: notebooks_branch`` in ``_config.yml``);
- leaves the Binder button on the repository's branch: ``binder/postBuild`` writes the paired ``.ipynb``
  of every ``.py`` page with Jupytext when the image is built.

:func:`check_links` lists every launch or download link whose target neither the built site nor the
repository layout (after ``binder/postBuild``) provides; the build fails on any.
"""

from __future__ import annotations

import glob
import re
import shlex
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import nbformat
import yaml

from gpa_lib.book.project import BookProject

BINDER_POSTBUILD = Path("binder") / "postBuild"
COLAB_HOST = "colab.research.google.com"
HREF = re.compile(r'href="([^"]+)"')


#: ``repository: url:`` of a copy nobody has pointed at its own repository yet. Binder and Colab would
#: open a repository that does not exist, so the build leaves their buttons (and the repository and
#: issues buttons) out until ``_config.yml`` names a real GitHub repository.
PLACEHOLDER_REPOSITORIES = frozenset({"gpa-compendium/gpa-compendium"})
#: Launch settings of ``launch_buttons`` that point at a service which opens the repository.
LAUNCH_KEYS = ("binderhub_url", "jupyterhub_url", "colab_url")
#: ``html`` settings of buttons that link to the repository.
REPOSITORY_BUTTONS = ("use_repository_button", "use_issues_button", "use_edit_page_button")


def site_config(project: BookProject) -> dict:
    """The one repository setting (``repository:`` of ``_config.yml``) and what the buttons derive from it.

    ``configured`` is false when the URL is empty, not on GitHub (Binder's ``gh`` provider and Colab's
    ``github`` path need GitHub) or a placeholder of :data:`PLACEHOLDER_REPOSITORIES`.
    """
    config = yaml.safe_load((project.root / "_config.yml").read_text()) or {}
    repository = config.get("repository") or {}
    url = str(repository.get("url") or "").rstrip("/")
    parts = urlsplit(url)
    org_repo = "/".join(parts.path.strip("/").split("/")[:2]) if url else ""
    configured = (
        parts.netloc == "github.com"
        and org_repo.count("/") == 1
        and org_repo not in PLACEHOLDER_REPOSITORIES
    )
    return {
        "url": url,
        "org_repo": org_repo,
        "configured": configured,
        "branch": repository.get("branch", "main"),
        "notebooks_branch": (config.get("gpa_book") or {}).get("notebooks_branch", ""),
        "launch": config.get("launch_buttons") or {},
    }


def staged_config(project: BookProject) -> str:
    """``_config.yml`` as the build renders it: without launch and repository buttons when the
    repository is not configured (see :func:`site_config`), verbatim otherwise."""
    text = (project.root / "_config.yml").read_text()
    if site_config(project)["configured"]:
        return text
    config = yaml.safe_load(text) or {}
    config.pop("repository", None)
    launch = config.get("launch_buttons") or {}
    config["launch_buttons"] = {k: v for k, v in launch.items() if k not in LAUNCH_KEYS}
    config["html"] = (config.get("html") or {}) | {key: False for key in REPOSITORY_BUTTONS}
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def colab_setup_cell(project: BookProject):
    """The cell prepended to a published notebook: on Colab, install gpa_lib from the repository."""
    cfg = site_config(project)
    source = (
        "# On Google Colab, install this compendium's library first (elsewhere this cell does nothing).\n"
        "# Colab keeps its own torch; the book itself pins torch in constraints.txt.\n"
        "import sys\n\n"
        'if "google.colab" in sys.modules:\n'
        "    %pip install --quiet torchmetrics myst-nb\n"
        f'    %pip install --quiet --no-deps "gpa_lib @ git+{cfg["url"]}@{cfg["branch"]}"\n'
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["remove-cell", "colab-setup"]
    return cell


def publish_notebooks(project: BookProject, executed: Path, html: Path) -> list[Path]:
    """Copy each executed notebook beside its page, with the Colab setup cell first (when a repo is set)."""
    published = []
    for nb in project.notebooks():
        source = executed / f"{nb.name}.ipynb"
        if not source.exists():
            continue
        notebook = nbformat.read(source, as_version=4)
        if site_config(project)["configured"]:
            notebook.cells.insert(0, colab_setup_cell(project))
        target = html / f"{nb.toc_entry}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
        published.append(target)
    return published


def point_buttons_at_published_notebooks(project: BookProject, html: Path) -> None:
    """Rewrite each notebook page's download and Colab links to the published ``.ipynb``."""
    cfg = site_config(project)
    for nb in project.notebooks():
        page = html / f"{nb.toc_entry}.html"
        if not page.exists() or not (html / f"{nb.toc_entry}.ipynb").exists():
            continue
        text = page.read_text()
        sibling = f"{Path(nb.toc_entry).name}.ipynb"
        text = re.sub(
            r'href="(?:\.\./)*_sources/' + re.escape(nb.toc_entry) + r'\.ipynb"',
            f'href="{sibling}"',
            text,
        )
        if cfg["notebooks_branch"] and cfg["configured"]:
            old = f"https://{COLAB_HOST}/github/{cfg['org_repo']}/blob/{cfg['branch']}/"
            new = f"https://{COLAB_HOST}/github/{cfg['org_repo']}/blob/{cfg['notebooks_branch']}/"
            text = text.replace(
                f'href="{old}{nb.toc_entry}.ipynb"', f'href="{new}{nb.toc_entry}.ipynb"'
            )
        page.write_text(text)


def binder_generated_files(root: Path) -> set[str]:
    """Repository paths that ``binder/postBuild`` writes: the outputs of its ``jupytext --to ipynb`` lines."""
    postbuild = root / BINDER_POSTBUILD
    if not postbuild.exists():
        return set()
    made: set[str] = set()
    for line in postbuild.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if words[:3] == ["jupytext", "--to", "ipynb"]:
            for pattern in words[3:]:
                for match in glob.glob(str(root / pattern)):
                    made.add(Path(match).relative_to(root).with_suffix(".ipynb").as_posix())
    return made


def launch_hosts(project: BookProject) -> set[str]:
    """The hosts of the launch services ``_config.yml`` names, whether or not the build shows them
    (with no repository configured the check must still see a stray Binder or Colab link)."""
    launch = site_config(project)["launch"]
    urls = (launch.get(key, "") for key in LAUNCH_KEYS)
    return {urlsplit(url).netloc for url in urls if url} | {COLAB_HOST}


def launch_and_download_links(html: Path, hosts: set[str]) -> list[tuple[str, str]]:
    """(page, url) for every launch link (to one of ``hosts``) and every download link of the site."""
    found = []
    for page in sorted(html.rglob("*.html")):
        rel = page.relative_to(html).as_posix()
        if rel.startswith(("_static/", "_sources/")):
            continue
        for url in HREF.findall(page.read_text()):
            url = url.replace("&amp;", "&")
            parts = urlsplit(url)
            if parts.netloc in hosts or (
                not parts.netloc and (parts.path.endswith(".ipynb") or "_sources/" in parts.path)
            ):
                found.append((rel, url))
    return found


def check_links(project: BookProject, html: Path) -> list[str]:
    """Problems, one line each: a launch or download link whose file nobody provides."""
    cfg = site_config(project)
    repo_files = binder_generated_files(project.root)
    binder = str(cfg["launch"].get("binderhub_url") or "").rstrip("/")
    problems = []
    for page, url in launch_and_download_links(html, launch_hosts(project)):
        parts = urlsplit(url)
        if parts.netloc and not cfg["configured"]:
            problems.append(
                f"{page}: launch link {url}, but _config.yml names no repository "
                f"(repository: url: {cfg['url'] or 'unset'})"
            )
        elif parts.netloc == COLAB_HOST:
            prefix = f"/github/{cfg['org_repo']}/blob/{cfg['notebooks_branch'] or cfg['branch']}/"
            if not parts.path.startswith(prefix):
                problems.append(f"{page}: Colab link {url} is not on branch {prefix}")
                continue
            path = parts.path[len(prefix) :]
            # that branch holds the built site's notebooks (the book workflow pushes them)
            if not (html / path).is_file():
                problems.append(
                    f"{page}: Colab opens {path}, which the built site does not contain"
                )
        elif parts.netloc:
            urlpath = parse_qs(parts.query).get("urlpath", [""])[0]
            tree = re.search(r"(?:^|/)tree/(.+)$", urlpath)  # lab/tree/PATH or tree/PATH
            path = unquote(tree.group(1)) if tree else ""
            if not url.startswith(f"{binder}/v2/gh/{cfg['org_repo']}/{cfg['branch']}?"):
                problems.append(
                    f"{page}: Binder link {url} is not for {cfg['org_repo']}@{cfg['branch']}"
                )
            elif not ((project.root / path).is_file() or path in repo_files):
                problems.append(
                    f"{page}: Binder opens {path}, which neither the repository nor binder/postBuild provides"
                )
        else:
            target = (html / page).parent / unquote(parts.path)
            if not target.resolve().is_file():
                problems.append(f"{page}: download link {url} points at no file of the built site")
    return problems


def check_setup_cells(project: BookProject, html: Path) -> list[str]:
    """Problems with the Colab setup cell of the published notebooks: present exactly when a repository
    is configured, and installing from that repository and branch."""
    cfg = site_config(project)
    expected = f"git+{cfg['url']}@{cfg['branch']}"
    problems = []
    for nb in project.notebooks():
        path = html / f"{nb.toc_entry}.ipynb"
        if not path.is_file():
            continue
        cells = nbformat.read(path, as_version=4).cells
        setup = [c for c in cells if "colab-setup" in c.metadata.get("tags", [])]
        if not cfg["configured"]:
            if setup:
                problems.append(f"{path.name}: a Colab setup cell, but no repository is configured")
        elif len(setup) != 1 or expected not in setup[0].source:
            problems.append(f"{path.name}: no Colab setup cell that installs {expected}")
    return problems

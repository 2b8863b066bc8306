"""The documentation: public names documented, no references outside the repository, runnable code blocks
run, and (slow) the built site in headless Chromium with its figures loaded and its math rendered.

`make docs` itself (Sphinx with -W) runs in CI after `make test`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import astrogate

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API_PAGE = DOCS / "api" / "index.md"
GENERATED = (DOCS / "_build", DOCS / "examples", DOCS / "api" / "modules",  # written by the build (ignored)
             DOCS / "api" / "tables")

# a code block is run by the tests when the line before its fence (blank lines aside) is one of these
RUNNABLE = re.compile(r"^<!--\s*runnable(\s+slow)?\s*-->\s*$")
FENCE = re.compile(r"^```(\w+)\s*$")
RUNNABLE_SOURCES = (ROOT / "README.md", *sorted((DOCS / "guide").glob("*.md")))


def doc_pages() -> list[Path]:
    pages = [ROOT / "README.md", ROOT / "runs" / "README.md", *ROOT.glob("examples/*.md")]
    pages += [p for p in DOCS.rglob("*.md") if not any(g in p.parents for g in GENERATED)]
    return sorted(set(p for p in pages if p.is_file()))


def source_files() -> list[Path]:
    folders = ("api", "models", "network", "analysis", "cli", "tests", "examples", ".ci")
    files = [p for folder in folders for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    files += [ROOT / "Makefile", ROOT / "pyproject.toml", *DOCS.glob("*.py")]
    files += sorted((ROOT / "runs" / "configs").glob("*.toml"))
    return sorted(set(files))


# -- public names -----------------------------------------------------------------------------
def public_names() -> list[str]:
    return [n for n in getattr(astrogate, "__all__", ()) if not n.startswith("__")]


def api_entries() -> set[str]:
    """Names that the API page documents with an autodoc directive, as `astrogate.NAME`."""
    text = API_PAGE.read_text(encoding="utf-8")
    return set(re.findall(r"^\.\. auto\w+::\s+astrogate\.(\w+)\s*$", text, flags=re.M))


def test_package_has_a_public_api():
    assert hasattr(astrogate, "__all__"), "astrogate declares no __all__: the public API is undefined"
    assert public_names(), "astrogate.__all__ names nothing"


@pytest.mark.parametrize("name", public_names() or ["<none>"])
def test_public_name_has_a_docstring_and_an_api_entry(name):
    if name == "<none>":
        pytest.skip("astrogate.__all__ is missing (test_package_has_a_public_api fails for it)")
    obj = getattr(astrogate, name)
    assert (obj.__doc__ or "").strip(), f"astrogate.{name} has no docstring"
    if not isinstance(obj, (str, int, float)):
        assert name in api_entries(), f"astrogate.{name} is not in the API reference ({API_PAGE.relative_to(ROOT)})"


def test_api_page_names_only_public_objects():
    stale = api_entries() - set(public_names())
    assert not stale, f"the API page documents names that astrogate does not export: {sorted(stale)}"


def load_generated_pages():
    """docs/generated_pages.py, which the build runs to write the example and module pages."""
    sys.path.insert(0, str(DOCS))
    try:
        import generated_pages
    finally:
        sys.path.remove(str(DOCS))
    return generated_pages


def test_every_module_gets_an_api_page_entry():
    generated_pages = load_generated_pages()
    documented = set()
    for text in generated_pages.module_pages(DOCS).values():
        documented |= set(re.findall(r"^\.\. automodule::\s+([\w.]+)", text, flags=re.M))
    modules = {"astrogate.errors"}
    for folder, package in (("models", "astrogate.models"), ("network", "astrogate.network"),
                            ("analysis", "astrogate.analysis"), ("cli", "astrogate.cli")):
        modules |= {f"{package}.{p.stem}" for p in (ROOT / folder).glob("*.py") if p.stem != "__init__"}
        for sub in (ROOT / folder).glob("*/__init__.py"):  # sub-packages (analysis/speed/) and their modules
            modules |= {f"{package}.{sub.parent.name}"} | {f"{package}.{sub.parent.name}.{p.stem}"
                                                           for p in sub.parent.glob("*.py") if p.stem != "__init__"}
    assert documented == modules


def load_docs_module(name: str):
    """A module of docs/ (generated_pages, page_checks), as the build imports it."""
    sys.path.insert(0, str(DOCS))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(DOCS))


# -- what breaks a page: control characters, math MathJax rejects, autodoc import errors ---------------
@pytest.mark.parametrize("path", doc_pages() + [p for p in source_files() if p.suffix in (".py", ".toml", ".md")],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_control_characters_in_the_sources_of_the_pages(path):
    """A Python string "\\text" written as "\text" puts a TAB into a page (the attention guide once had a TAB
    and a backspace in its math); the pages and the sources of their docstrings hold none."""
    found = load_docs_module("page_checks").control_characters(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: {found[:5]}"


BUILT_PAGE = """<html><body><p>Gains <span class="math notranslate nohighlight">\\(g = \\operatorname{softmax}(a)\\)</span>.
<div class="math notranslate nohighlight" id="equation-x"><span class="eqno">(1)<a class="headerlink"
href="#equation-x">\u00b6</a></span>\\[\\tau_u \\frac{du}{dt} = -u + I\\]</div>
BROKEN</p></body></html>"""


@pytest.mark.parametrize("broken, problem", [
    ("", None),
    ('<span class="math">\\(\\operatorname{softmax}(\text{scale})\\)</span>', "TAB before 'ext{scale}"),
    ('<span class="math">\\(\beta = 20 d\\)</span>', "backspace before 'eta = 20 d"),
    ('<span class="math">\\(\\frac{a}{\\)</span>', "MathJax: Missing close brace in $\\frac{a}{$"),
    ('<span class="math">\\(\\bta + 1\\)</span>', "MathJax: undefined control sequence \\bta"),
])
def test_page_checks_find_control_characters_and_math_errors(tmp_path, broken, problem):
    """The checks every docs build runs on its pages (docs/conf.py), on a page written as Sphinx writes math."""
    page_checks = load_docs_module("page_checks")
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: the build's math check (MathJax in node) cannot run here")
    (tmp_path / "guide").mkdir()
    (tmp_path / "guide" / "page.html").write_text(BUILT_PAGE.replace("BROKEN", broken), encoding="utf-8")
    assert page_checks.math_formulas(BUILT_PAGE)[1] == ("\\tau_u \\frac{du}{dt} = -u + I", True)
    problems = page_checks.check_pages(tmp_path)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) >= 1 and all(p.startswith("guide/page.html: ") for p in problems)
        assert any(problem in p for p in problems), problems


def test_a_docs_build_fails_when_autodoc_cannot_import_the_package(tmp_path):
    """A package named astrogate that shadows the installed one (as the checkout's root folder once did) leaves
    the API reference empty: the build stops at once, naming what did not import, also without -W."""
    shadow = tmp_path / "shadow" / "astrogate"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('__version__ = "0"\n__all__ = ["Parameters"]\n', encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(shadow.parent))
    build = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", str(DOCS), str(tmp_path / "html")],
                           capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert build.returncode != 0
    assert "the API reference cannot be built from astrogate at" in build.stderr
    # an editable install's finder still resolves the subpackages; a wheel's does not
    assert re.search(r"astrogate\.(models\.\w+: ModuleNotFoundError|Parameters: AttributeError)", build.stderr), \
        build.stderr[-2000:]


# -- references outside the repository --------------------------------------------------------
# built from pieces so that this file does not match itself
OUTSIDE = [re.compile(p) for p in (r"\.\./" + "shared", "MODEL" + r"\.md", r"/" + r"work/", r"\.library/")]


@pytest.mark.parametrize("path", doc_pages() + source_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_outside_the_repository(path):
    if path == Path(__file__).resolve():
        return
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return  # binary files (figures) hold no references
    for pattern in OUTSIDE:
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            pytest.fail(f"{path.relative_to(ROOT)}:{line} refers outside the repository: {match.group(0)!r}")


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(page):
    # pages the build generates (git-ignored, absent from a fresh clone until `make docs`) count as present
    pages = load_generated_pages()
    generated = {path.resolve() for path in (*pages.example_pages(DOCS), *pages.module_pages(DOCS))}
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        resolved = (page.parent / target.split("#")[0]).resolve()
        assert ROOT in resolved.parents or resolved == ROOT, f"{page.relative_to(ROOT)}: {target} is outside the repository"
        assert resolved.exists() or resolved in generated, f"{page.relative_to(ROOT)}: link {target} points to nothing"


# -- runnable code blocks ---------------------------------------------------------------------
def runnable_blocks() -> list:
    blocks = []
    for path in RUNNABLE_SOURCES:
        lines = path.read_text(encoding="utf-8").splitlines()
        marker = None
        i = 0
        while i < len(lines):
            line = lines[i]
            found = RUNNABLE.match(line)
            fence = FENCE.match(line)
            if found:
                marker = found
            elif fence and marker is not None:
                end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
                code = "\n".join(lines[i + 1:end]) + "\n"
                marks = [pytest.mark.slow] if marker.group(1) else []
                name = f"{path.relative_to(ROOT)}:{i + 1}"
                blocks.append(pytest.param(fence.group(1), code, id=name, marks=marks))
                marker, i = None, end
            elif line.strip():
                marker = None  # the marker belongs to the block right below it only
            i += 1
    return blocks


def test_runnable_blocks_are_found():
    blocks = runnable_blocks()
    assert {p.id.split(":")[0] for p in blocks} >= {"README.md", "docs/guide/abstract.md"}
    assert all(p.values[0] in ("python", "bash") for p in blocks), "runnable blocks are python or bash"


def flat_api_names(code: str) -> set[str]:
    return set(re.findall(r"\bag\.(\w+)", code))


@pytest.mark.parametrize(("language", "code"), runnable_blocks())
def test_runnable_block_runs(language, code, tmp_path):
    missing = sorted(n for n in flat_api_names(code) if not hasattr(astrogate, n))
    if missing and not hasattr(astrogate, "__all__"):
        pytest.skip(f"needs the flat API (astrogate.{', astrogate.'.join(missing)}), not in this checkout yet")
    env = dict(os.environ, MPLBACKEND="Agg", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    if language == "python":
        commands = [[sys.executable, "-c", code]]
    else:
        commands = [["bash", "-c", line] for line in code.splitlines() if line.strip() and not line.startswith("#")]
    for command in commands:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command[-1]}\nexit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        # a block that prints a check prints True: False is a documented claim that no longer holds
        assert not re.search(r"\bFalse\b", done.stdout), f"{command[-1]}\nprinted False:\n{done.stdout[-2000:]}"


# -- the built site in a browser --------------------------------------------------------------
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--allow-file-access-from-files")

# loads a page in an iframe and reports its images and its math once MathJax has had time to typeset
CHECK_PAGE = """<!DOCTYPE html><html><body><pre id="report">pending</pre>
<iframe id="page" src="PAGE_URL" style="width:1200px;height:900px"></iframe>
<script>
function report() {
  const doc = document.getElementById("page").contentDocument;
  const images = Array.from(doc.images).map(i => ({src: i.getAttribute("src"), width: i.naturalWidth}));
  document.getElementById("report").textContent = JSON.stringify({
    images: images,
    math: doc.querySelectorAll("div.math, span.math").length,
    typeset: doc.querySelectorAll("div.math mjx-container, span.math mjx-container").length,
    errors: doc.querySelectorAll("mjx-merror").length,
  });
}
window.addEventListener("load", () => setTimeout(report, 4000));
</script></body></html>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def page_report(browser: str, page: Path, work: Path) -> dict:
    check = work / f"check_{page.stem}.html"
    check.write_text(CHECK_PAGE.replace("PAGE_URL", page.as_uri()), encoding="utf-8")
    profile = work / f"profile_{page.stem}"  # a fresh profile per page
    done = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=20000",
                           "--dump-dom", check.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="report">(.*?)</pre>', done.stdout, flags=re.S)
    assert found and found.group(1) != "pending", f"no report from Chromium for {page.name}:\n{done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.slow
def test_built_site_shows_figures_and_math(tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("Chromium is not installed, so the built site was not checked in a browser "
                    "(Debian: apt-get install -y chromium)")
    html = tmp_path / "html"
    build = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", str(DOCS), str(html)],
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-3000:]

    index = page_report(browser, html / "index.html", tmp_path)
    assert index["images"], "the index shows no figure"
    broken = [i["src"] for i in index["images"] if i["width"] == 0]
    assert not broken, f"broken images on the index: {broken}"

    results = page_report(browser, html / "results" / "retrieval.html", tmp_path)
    assert results["images"], "the retrieval results show no figure"
    broken = [i["src"] for i in results["images"] if i["width"] == 0]
    assert not broken, f"broken images on the retrieval results: {broken}"

    model = page_report(browser, html / "model.html", tmp_path)
    assert model["math"] >= 20, model
    assert model["typeset"] == model["math"], f"MathJax typeset {model['typeset']} of {model['math']} formulas"
    assert model["errors"] == 0, f"{model['errors']} formulas failed to typeset"


@pytest.mark.slow
def test_built_tutorials_show_their_output_and_figures(tmp_path):
    """A build without -W (the checks of docs/conf.py fail it all the same): the tutorials ran, their printed
    output and their figures are on the pages, and no page has a control character or rejected math."""
    html = tmp_path / "html"
    build = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", str(DOCS), str(html)],
                           capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stderr[-3000:]
    for page, printed, figures in (("brian2_script", ["retrieved pattern", "agm retrieved",
                                                      "the same 10 ms again: True"], 1),
                                   ("paper_protocol", ["exact retrievals 20 of 20", "perplexity"], 1)):
        text = (html / "tutorials" / f"{page}.html").read_text(encoding="utf-8")
        outputs = re.findall(r'<div class="cell_output docutils container">(.*?)</div>\s*</div>', text, flags=re.S)
        assert outputs, f"{page}: no cell output"
        for expected in printed:
            assert expected in text, f"{page}: {expected!r} not printed"
        images = re.findall(r'<img [^>]*src="([^"]+)"', text)
        assert len(images) >= figures and all((html / "tutorials" / src).is_file() for src in images), images
    if shutil.which("node"):
        assert load_docs_module("page_checks").check_pages(html) == []

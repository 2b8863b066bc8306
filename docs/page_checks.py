"""Checks of the built pages, run at the end of every docs build (docs/conf.py) and by tests/test_docs.py.

- Control characters (a TAB, a backspace, ...; newlines aside) in a page: a Python string written with "\\t"
  or "\\b" where the TeX of \\text or \\beta was meant once put a TAB and a backspace into a page's math.
- Math that MathJax's TeX input rejects (an error box, "Math input error" in the browser) or whose macros it
  does not know (drawn in red): every formula of every page is converted by MathJax 3 itself, the copy the site
  ships (django-static-mathjax), run by Node.js with the components the site loads (tex-chtml: TeX input).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_NAMES = {"\t": "TAB", "\b": "backspace", "\x00": "NUL", "\x0c": "form feed", "\x1b": "escape"}
# Sphinx writes math as \(...\) in span.math and \[...\] in div.math
DELIMITERS = ((r"\(", r"\)"), (r"\[", r"\]"))

# Node.js script: formulas as JSON on stdin, the rejected ones as JSON on stdout
MATHJAX_SCRIPT = r"""
const es5 = process.argv[process.argv.length - 1];
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  require(es5 + '/node-main.js').init({loader: {load: ['input/tex', 'adaptors/liteDOM']}, startup: {typeset: false}})
    .then((MathJax) => {
      const problems = [];
      JSON.parse(input).forEach(([tex, display], index) => {
        let mml;
        try { mml = MathJax.tex2mml(tex, {display: display}); }
        catch (error) { problems.push([index, String(error.message || error)]); return; }
        const error = mml.match(/data-mjx-error="([^"]*)"/);
        const undefinedMacro = mml.match(/<mtext mathcolor="red">([^<]*)<\/mtext>/);
        if (error || mml.includes('<merror')) problems.push([index, error ? error[1] : 'merror']);
        else if (undefinedMacro) problems.push([index, 'undefined control sequence ' + undefinedMacro[1]]);
      });
      process.stdout.write(JSON.stringify(problems));
    })
    .catch((error) => { console.error(error); process.exit(1); });
});
"""


def control_characters(text: str) -> list[str]:
    """'line L: NAME' for every control character (newlines aside) of `text`."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in CONTROL.finditer(line):
            char = match.group()
            found.append(f"line {number}: {CONTROL_NAMES.get(char, f'U+{ord(char):04X}')} before "
                         f"{line[match.end():match.end() + 20]!r}")
    return found


class _MathCollector(HTMLParser):
    """The TeX of every element of class "math" (Sphinx's span.math and div.math), without the equation
    number a labelled equation carries inside it (span.eqno)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.formulas: list[tuple[str, bool]] = []
        self._depth = 0  # inside a math element: its nesting depth
        self._skip = 0  # inside its equation number: that element's nesting depth
        self._display = False
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if self._depth:
            self._depth += 1
            if self._skip:
                self._skip += 1
            elif "eqno" in classes:
                self._skip = 1
        elif "math" in classes:
            self._depth, self._display, self._text = 1, tag == "div", []

    def handle_endtag(self, tag):
        if self._depth:
            self._depth -= 1
            if self._skip:
                self._skip -= 1
            if not self._depth:
                self.formulas.append((strip_delimiters("".join(self._text)), self._display))

    def handle_data(self, data):
        if self._depth and not self._skip:
            self._text.append(data)


def strip_delimiters(text: str) -> str:
    text = text.strip()
    for left, right in DELIMITERS:
        if text.startswith(left) and text.endswith(right):
            return text[len(left):-len(right)]
    return text


def math_formulas(page_html: str) -> list[tuple[str, bool]]:
    """(TeX, display) of every formula of a built page."""
    collector = _MathCollector()
    collector.feed(page_html)
    collector.close()
    return collector.formulas


def mathjax_es5() -> Path:
    """The MathJax 3 distribution of the docs extra (the copy the site ships)."""
    import importlib.util

    spec = importlib.util.find_spec("mathjax")
    if spec is None:
        raise RuntimeError("MathJax is not installed: pip install -e '.[docs]' (django-static-mathjax)")
    return Path(spec.submodule_search_locations[0]) / "static" / "mathjax" / "es5"


def mathjax_errors(formulas: list[tuple[str, bool]], node: str | None = None) -> list[tuple[int, str]]:
    """(index, MathJax's message) of every formula MathJax's TeX input rejects or draws an undefined macro of."""
    node = node or shutil.which("node")
    if node is None:
        raise RuntimeError("Node.js (node) is needed to check the pages' math with MathJax")
    if not formulas:
        return []
    done = subprocess.run([node, "-e", MATHJAX_SCRIPT, str(mathjax_es5())], input=json.dumps(formulas),
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"MathJax in Node.js failed: {done.stderr[-2000:]}")
    return [(int(index), message) for index, message in json.loads(done.stdout)]


def check_pages(outdir: Path, node: str | None = None) -> list[str]:
    """One line per problem of the HTML pages under `outdir`: control characters, rejected math."""
    problems, formulas, where = [], [], []
    for page in sorted(Path(outdir).rglob("*.html")):
        name = page.relative_to(outdir).as_posix()
        if name.startswith("_static/"):  # the theme's and MathJax's own files
            continue
        text = page.read_text(encoding="utf-8")
        problems += [f"{name}: {found}" for found in control_characters(text)]
        for tex, display in math_formulas(text):
            formulas.append((tex, display))
            where.append(name)
    for index, message in mathjax_errors(formulas, node):
        problems.append(f"{where[index]}: MathJax: {message} in ${formulas[index][0][:80]}$")
    return problems

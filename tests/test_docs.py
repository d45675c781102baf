"""The documentation stands alone: every relative link and image in README.md and
docs/ resolves to a file of the repository (and every anchor to a heading), and no
text points outside the repository."""
import ast
import builtins
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MARKDOWN = sorted([os.path.join(ROOT, "README.md")]
                  + glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))

# What the text of the product may not mention: files outside the repository, the
# design notes it was written from, and the tracker threads it was planned in.
FORBIDDEN = [
    (re.compile(r"\.\./shared"), "a path outside the repository (../shared)"),
    (re.compile(r"\bSPEC\b"), "an external design note (SPEC)"),
    (re.compile(r"\bthe issue\b", re.IGNORECASE), "a tracker thread ('the issue')"),
    (re.compile(r"\bissues? #?\d+\b", re.IGNORECASE), "a tracker thread ('issue N')"),
]


def _product_text_files():
    files = list(MARKDOWN)
    files += glob.glob(os.path.join(ROOT, "python", "**", "*.py"), recursive=True)
    files += glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb"))
    return sorted(files)


def _rel(path):
    return os.path.relpath(path, ROOT)


# ------------------------------------------------------------------ markdown parsing
_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_SRC = re.compile(r"<(?:img|a)\b[^>]*\b(?:src|href)=\"([^\"]+)\"", re.IGNORECASE)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def _strip_code(text):
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def _links(text):
    text = _strip_code(text)
    return _LINK.findall(text) + _HTML_SRC.findall(text)


def _slug(heading):
    """The anchor GitHub gives a heading: lower case, punctuation dropped (letters,
    digits, '_' and '-' kept), spaces turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # links keep their text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path):
    with open(path, encoding="utf-8") as f:
        text = _FENCE.sub("", f.read())
    seen, out = {}, set()
    for heading in _HEADING.findall(text):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        out.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    return out


def _is_external(target):
    return re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) is not None


# ------------------------------------------------------------------ the tests
def test_there_is_documentation_to_check():
    names = {_rel(p) for p in MARKDOWN}
    assert "README.md" in names
    assert os.path.join("docs", "math.md") in names


@pytest.mark.parametrize("path", MARKDOWN, ids=_rel)
def test_links_resolve_inside_the_repository(path):
    with open(path, encoding="utf-8") as f:
        links = _links(f.read())
    problems = []
    for target in links:
        if _is_external(target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = path if not file_part else os.path.realpath(
            os.path.join(os.path.dirname(path), file_part))
        if os.path.commonpath([resolved, ROOT]) != ROOT:
            problems.append(f"{target}: points outside the repository")
        elif not os.path.exists(resolved):
            problems.append(f"{target}: no such file")
        elif anchor and resolved.endswith(".md") and anchor not in _anchors(resolved):
            problems.append(f"{target}: no heading with anchor #{anchor} in {_rel(resolved)}")
    assert not problems, f"{_rel(path)}: " + "; ".join(problems)


def test_math_doc_has_the_sections_that_are_cited():
    anchors = _anchors(os.path.join(ROOT, "docs", "math.md"))
    for title in ("The task", "The model and its token layout", "Losses and their gradients",
                  "Training", "Baselines", "Critics and self-correction", "Metrics",
                  "Claims and what each tests"):
        assert _slug(title) in anchors, title


def test_docstring_citations_of_the_math_doc_name_existing_sections():
    anchors = _anchors(os.path.join(ROOT, "docs", "math.md"))
    cited = re.compile(r"docs/math\.md,\s+section\s+\"([^\"]+)\"")
    problems = []
    for path in glob.glob(os.path.join(ROOT, "python", "**", "*.py"), recursive=True) \
            + MARKDOWN:
        with open(path, encoding="utf-8") as f:
            text = re.sub(r"\s+", " ", f.read())
        problems += [f"{_rel(path)}: {t!r}" for t in cited.findall(text)
                     if _slug(t) not in anchors]
    assert not problems, "citations of docs/math.md sections that do not exist: " + \
        ", ".join(problems)


@pytest.mark.parametrize("path", _product_text_files(), ids=_rel)
def test_no_text_points_outside_the_repository(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    hits = [f"line {i}: {why}: {line.strip()[:100]!r}"
            for i, line in enumerate(lines, 1)
            for pattern, why in FORBIDDEN if pattern.search(line)]
    assert not hits, f"{_rel(path)}:\n" + "\n".join(hits)


_PYTHON_BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def _python_blocks(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for m in _PYTHON_BLOCK.finditer(text):
        indent = len(m.group(1))
        yield text.count("\n", 0, m.start()) + 1, \
            "\n".join(line[indent:] for line in m.group(2).split("\n"))


def _undefined_names(tree):
    """Names a block reads but neither imports nor defines (scopes ignored)."""
    defined, used = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
    return used - defined


def _is_main_guard(node):
    return isinstance(node, ast.If) and isinstance(node.test, ast.Compare) \
        and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"


@pytest.mark.parametrize("path", MARKDOWN, ids=_rel)
def test_python_blocks_stand_alone(path):
    """Every Python block can be copied and run on its own: it imports or defines every
    name it uses, and a script that starts a run (``main(...)``) does so under
    ``if __name__ == "__main__":``, since the local worker processes import the main
    script."""
    problems = []
    for line, code in _python_blocks(path):
        tree = ast.parse(code)
        missing = _undefined_names(tree)
        if missing:
            problems.append(f"block at line {line} uses {sorted(missing)} without defining them")
        for node in tree.body:
            if not _is_main_guard(node) and any(
                    isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                    and n.func.id == "main" for n in ast.walk(node)):
                problems.append(f"block at line {line} calls main() outside "
                                "if __name__ == '__main__'")
    assert not problems, f"{_rel(path)}: " + "; ".join(problems)


@pytest.mark.parametrize("heading, slug", [
    ("Losses and their gradients", "losses-and-their-gradients"),
    ("Claims (12 ✓, 11 ✗)", "claims-12--11-"),
    ("`docs/quick` and the API in ten lines", "docsquick-and-the-api-in-ten-lines"),
])
def test_slug_follows_github(heading, slug):
    assert _slug(heading) == slug

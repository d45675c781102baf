"""The results shown in README.md are the ones the code computes from the committed
JSON files of a real quick run (docs/quick/), not numbers typed in by hand: README's
results block is the rendering of docs/quick (``icalign report docs/quick --readme
README.md``), and holds report.md's claims section verbatim."""
import os

import pytest

from icalign import registry, report, summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLISHED = os.path.join(ROOT, "docs", "quick")

pytestmark = pytest.mark.skipif(not os.path.isdir(PUBLISHED),
                                reason="docs/quick is not part of this checkout")


def _claims_section(report: str) -> str:
    return report[report.index("## Claims"):report.index("## Experiments")].strip()


def _readme() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def test_report_is_rendered_from_the_published_json():
    with open(os.path.join(PUBLISHED, "report.md"), encoding="utf-8") as f:
        committed = f.read()
    assert report.render_report(PUBLISHED) == committed


def test_readme_results_block_is_the_rendering_of_the_published_results():
    readme = _readme()
    block = readme[readme.index(summary.BEGIN):readme.index(summary.END) + len(summary.END)]
    assert block + "\n" == summary.readme_results(PUBLISHED, link="docs/quick"), \
        "README.md is stale: run `icalign report docs/quick --readme README.md`"


def test_readme_claims_table_is_the_published_report():
    with open(os.path.join(PUBLISHED, "report.md"), encoding="utf-8") as f:
        claims = _claims_section(f.read())
    # the README nests the report's sections one heading level deeper
    demoted = "\n".join("#" + line if line.startswith("##") else line
                        for line in claims.splitlines())
    assert demoted in _readme()


def test_readme_shows_every_published_figure():
    readme = _readme()
    for fn in sorted(os.listdir(PUBLISHED)):
        if fn.endswith(".png"):
            assert f"](docs/quick/{fn})" in readme, fn


# Registered experiments whose quick-profile results are not published yet; each is
# named here on purpose, so that no experiment goes missing from docs/quick silently.
NOT_YET_PUBLISHED = set()


def test_published_run_is_the_quick_profile_with_every_experiment():
    results = report.load_results(PUBLISHED)
    registry.load_builtin_experiments()
    assert set(results) | NOT_YET_PUBLISHED == set(registry.EXPERIMENTS)
    assert not set(results) & NOT_YET_PUBLISHED, "published now: drop it from NOT_YET_PUBLISHED"
    assert {r["profile"] for r in results.values()} == {"quick"}

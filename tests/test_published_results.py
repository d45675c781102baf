"""The results shown in README.md are the ones the code computes from the committed
JSON files of a real quick run (docs/quick/), not numbers typed in by hand."""
import os

import pytest

from icalign import registry, report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLISHED = os.path.join(ROOT, "docs", "quick")

pytestmark = pytest.mark.skipif(not os.path.isdir(PUBLISHED),
                                reason="docs/quick is not part of this checkout")


def _claims_section(report: str) -> str:
    return report[report.index("## Claims"):report.index("## Experiments")].strip()


def test_report_is_rendered_from_the_published_json():
    with open(os.path.join(PUBLISHED, "report.md"), encoding="utf-8") as f:
        committed = f.read()
    assert report.render_report(PUBLISHED) == committed


def test_readme_claims_table_is_the_published_report():
    with open(os.path.join(PUBLISHED, "report.md"), encoding="utf-8") as f:
        claims = _claims_section(f.read())
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    # the README nests the report's sections one heading level deeper
    demoted = "\n".join("#" + line if line.startswith("##") else line
                        for line in claims.splitlines())
    assert demoted in readme


def test_published_run_is_the_quick_profile_with_every_experiment():
    results = report.load_results(PUBLISHED)
    assert set(results) == set(registry.EXPERIMENTS)
    assert {r["profile"] for r in results.values()} == {"quick"}

"""README's and docs' measured tables are the bench scripts' own markdown (scripts/sync_readme_tables.py), never typed
by hand; README stays a user's page."""
from scripts import sync_readme_tables

from .conftest import REPO


def test_readme_and_docs_tables_match_the_bench_results():
    blocks = [m for page in sync_readme_tables.pages() for m in sync_readme_tables.BLOCK.finditer(page.read_text())]
    assert len(blocks) >= 10
    assert sync_readme_tables.main(["--check"]) == 0, "run python scripts/sync_readme_tables.py"


def test_every_bench_and_script_that_writes_those_tables_parses():
    # pytest runs none of them; a syntax error in one sat on main unnoticed until its table was re-measured
    for path in sorted([*(REPO / "bench").glob("*.py"), *(REPO / "scripts").glob("*.py")]):
        compile(path.read_text(), str(path), "exec")


def test_readme_is_a_short_users_page():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 120, len(lines)
    assert "bash scripts/app.sh" in lines[lines.index("```bash") + 1] and "bash scripts/test.sh" in lines[lines.index("```bash") + 2]


def test_a_hand_edited_number_is_caught(tmp_path):
    page = tmp_path / "quality.md"
    original = (REPO / "docs" / "quality.md").read_text()
    page.write_text(original.replace("| 0.1 | 10 | 4.9247 |", "| 0.1 | 10 | 4.0000 |", 1))
    assert page.read_text() != original
    assert sync_readme_tables.main(["--check", str(page)]) == 1
    assert sync_readme_tables.main([str(page)]) == 0
    assert page.read_text() == original

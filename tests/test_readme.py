"""README's measured tables are the bench scripts' own markdown (scripts/sync_readme_tables.py), never typed by hand."""
from scripts import sync_readme_tables

from .conftest import REPO


def test_readme_tables_match_the_bench_results():
    text = (REPO / "README.md").read_text()
    blocks = list(sync_readme_tables.BLOCK.finditer(text))
    assert len(blocks) >= 6
    assert sync_readme_tables.main(["--check"]) == 0, "run python scripts/sync_readme_tables.py"


def test_a_hand_edited_number_is_caught(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text((REPO / "README.md").read_text().replace("| 0.1 | 10 | 4.9247 |", "| 0.1 | 10 | 4.0000 |", 1))
    assert sync_readme_tables.main(["--check", "--readme", str(readme)]) == 1
    assert sync_readme_tables.main(["--readme", str(readme)]) == 0
    assert readme.read_text() == (REPO / "README.md").read_text()

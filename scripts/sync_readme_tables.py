"""The measured tables in README.md and docs/*.md are the bench scripts' own markdown: between
`<!-- from bench/results/NAME.md -->` and `<!-- end -->` this writes that file's text (`... NAME.md table 2 -->`: only
its second table), so no number in those blocks is typed by hand.

    python scripts/sync_readme_tables.py            # rewrite README.md's and docs/*.md's blocks from bench/results/
    python scripts/sync_readme_tables.py --check    # exit 1 where a page differs (a test runs this)
"""
import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- from (?P<path>[\w./-]+\.md)(?: table (?P<table>\d+))? -->\n)(?P<body>.*?)(<!-- end -->)", re.DOTALL)


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def tables(text: str) -> list[str]:
    """The markdown tables of `text`: runs of lines that start with '|'."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append("\n".join(current))
            current = []
    return found


def synced(text: str) -> str:
    def fill(match: re.Match) -> str:
        source = REPO / match["path"]
        if not source.is_file():
            raise FileNotFoundError(f"a page's block names {match['path']}, which does not exist")
        body = source.read_text().rstrip("\n")
        if match["table"]:
            found = tables(body)
            if not 1 <= int(match["table"]) <= len(found):
                raise ValueError(f"{match['path']} has {len(found)} table(s), not a table {match['table']}")
            body = found[int(match["table"]) - 1]
        return match.group(1) + body + "\n" + match.group(5)

    return BLOCK.sub(fill, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report, do not write")
    parser.add_argument("pages", nargs="*", type=Path, help="pages to sync (default: README.md and docs/*.md)")
    args = parser.parse_args(argv)
    stale_pages = 0
    for page in args.pages or pages():
        text = page.read_text()
        new = synced(text)
        if args.check:
            stale = [m["path"] for m, n in zip(BLOCK.finditer(text), BLOCK.finditer(new)) if m["body"] != n["body"]]
            if stale:
                print(f"{page} is out of date with {', '.join(stale)}: run python scripts/sync_readme_tables.py", file=sys.stderr)
                stale_pages += 1
        elif new != text:
            page.write_text(new)
    return 1 if stale_pages else 0


if __name__ == "__main__":
    sys.exit(main())

"""README's measured tables are the bench scripts' own markdown: between `<!-- from bench/results/NAME.md -->` and
`<!-- end -->` this writes that file's text, so no number in those blocks is typed by hand.

    python scripts/sync_readme_tables.py            # rewrite README.md's blocks from bench/results/
    python scripts/sync_readme_tables.py --check    # exit 1 where README.md differs (a test runs this)
"""
import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- from (?P<path>[\w./-]+\.md) -->\n)(?P<body>.*?)(<!-- end -->)", re.DOTALL)


def synced(text: str) -> str:
    def fill(match: re.Match) -> str:
        source = REPO / match["path"]
        if not source.is_file():
            raise FileNotFoundError(f"README block names {match['path']}, which does not exist")
        return match.group(1) + source.read_text().rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(fill, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report, do not write")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    new = synced(text)
    if args.check:
        stale = [m["path"] for m, n in zip(BLOCK.finditer(text), BLOCK.finditer(new)) if m["body"] != n["body"]]
        if stale:
            print(f"{args.readme} is out of date with {', '.join(stale)}: run python scripts/sync_readme_tables.py", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write the project's crafted corpus, test/fixtures/crafted, from tests/crafted.py.

    .venv/bin/python tools/crafted.py           # (re)write the files and MANIFEST.tsv
    .venv/bin/python tools/crafted.py --check   # exit 1 if the directory differs

Each file is small and gives one reason (MANIFEST.tsv: file, expected reason, how it
was made). The output is deterministic: running it twice writes the same bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.crafted import CORPUS, CRAFTED, differences, files


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        wrong = differences()
        for name in wrong:
            print(f"differs from tests/crafted.py: {name}", file=sys.stderr)
        return 1 if wrong else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    CRAFTED.mkdir(parents=True, exist_ok=True)
    for stale in {p.name for p in CRAFTED.iterdir()} - set(files()):
        (CRAFTED / stale).unlink()
    for name, data in files().items():
        (CRAFTED / name).write_bytes(data)
    print(f"wrote {len(CORPUS)} files and MANIFEST.tsv to {CRAFTED}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

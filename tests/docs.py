"""
The fenced code blocks of README.md and docs/*.md, as a reader sees them.

Every block carries a marker, an HTML comment on the line above it, that says which test runs
it (tests/deploy/test_docs.py checks that each block has one, and runs or checks the blocks no
other test owns):

    <!-- second terminal -->   README: pasted in a shell beside `make run` (test_readme.py)
    <!-- terminal -->          README: the commands a newcomer types first (test_readme.py)
    <!-- third terminal -->    README: watching the sockets meanwhile (test_readme.py)
    <!-- after the quick start --> run in that shell once the README's block ran (test_readme.py)
    <!-- honcho -->            operations: `honcho start` as printed (test_procfile.py)
    <!-- file: PATH -->        an excerpt of PATH, verbatim
    <!-- ws: ROUTE -->         a WebSocket conversation, replayed against the stack
    <!-- shell: GROUP -->      Python for `manage.py shell`, run while a socket of GROUP listens
    <!-- bench -->             `make bench` command lines (test_docs.py)
    <!-- figure -->            a drawing, not code
"""

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<text>.*?)^```$", re.S | re.M)
MARKER = re.compile(r"<!--\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    marker: str | None
    lang: str
    text: str

    @property
    def kind(self) -> str | None:
        return None if self.marker is None else self.marker.split(":", 1)[0]

    @property
    def argument(self) -> str:
        return self.marker.split(":", 1)[1].strip() if self.marker and ":" in self.marker else ""

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(*paths: Path) -> list[Block]:
    """Every fenced block of `paths` (default: README.md and docs/*.md), in order."""
    found = []
    for path in paths or DOCS:
        text = path.read_text()
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = MARKER.search(before)
            line = text.count("\n", 0, match.start()) + 1
            name = marker.group(1) if marker else None
            found.append(Block(path, line, name, match["lang"], match["text"]))
    return found


def marked(kind: str, *paths: Path) -> list[Block]:
    """The blocks whose marker is `kind` (or `kind: ...`)."""
    return [block for block in blocks(*paths) if block.kind == kind]


def commands(block: Block) -> list[str]:
    """The block's shell lines without their comments (a `\\` continues a line)."""
    joined = block.text.replace("\\\n", " ")
    lines = (re.sub(r"(^|\s+)#.*$", "", line).strip() for line in joined.splitlines())
    return [" ".join(line.split()) for line in lines if line]

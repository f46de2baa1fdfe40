"""No module in ``secretsync/`` or ``providers/`` grows past 800 lines without saying why.

A reviewer opening a long file should learn at its first line why it is long (one job that
reads best in one place, or a split that waits for parallel work), so a file that simply grew
is caught here by name and split instead.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIMIT = 800
MARK = "# long-file: "


def _long_files() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for top in ("secretsync", "providers"):
        for path in sorted((REPO / top).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines()
            if len(lines) > LIMIT:
                out[path.relative_to(REPO).as_posix()] = lines
    return out


def test_every_file_over_800_lines_says_why_on_its_first_line() -> None:
    unexplained = sorted(f"{name} ({len(lines)} lines)" for name, lines in _long_files().items()
                         if not (lines[0].startswith(MARK) and len(lines[0]) > len(MARK) + 20))
    assert unexplained == [], f"split these, or put '{MARK}<why>' on their first line"


def test_the_check_sees_the_files_it_is_about() -> None:
    assert "secretsync/api/models.py" in _long_files()

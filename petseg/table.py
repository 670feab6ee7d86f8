"""Tables: aligned text for terminal summaries, Markdown and CSV for reports, and the cells they share."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned, text left-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in cells[1:] if row[i]) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(row, widths, numeric)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _is_number(text: str) -> bool:
    try:
        float(text.replace("%", "").replace("x", "").replace("+", ""))
        return True
    except ValueError:
        return False


def csv_text(rows: Sequence[dict], fieldnames: Sequence[str]) -> str:
    """``rows`` as CSV with a header line; keys outside ``fieldnames`` are left out."""
    import csv
    import io

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(fieldnames), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table: the header row, its rule, then one line per row."""
    lines = [list(headers), ["---"] * len(headers), *rows]
    return "\n".join(f"| {' | '.join(map(str, line))} |" for line in lines)


def format_value(value: object, spec: str) -> str:
    """``value`` in ``spec``'s format; an empty cell for None (not measured)."""
    return "" if value is None else format(value, spec)


def format_ops(ops: dict[str, int]) -> str:
    """Op counts, ``ADD x1, QUANTIZE x2`` (by name), or ``none``: ops outside the delegate."""
    return ", ".join(f"{op} x{n}" for op, n in sorted(ops.items())) or "none"

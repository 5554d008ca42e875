"""Fitting a table to a terminal: leave out the least useful columns, then clip the text ones.

A table lists its *steps* in order: a column name means "leave this column
out", a number means "clip the text columns, but to no fewer characters than
this". :func:`fit` takes steps only until the table fits, so a wide terminal
shows everything and a narrow one keeps what matters most (the group, calls
and cost). What was left out is named, so the reader knows to widen the
terminal or ask for JSON: nothing disappears silently.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import attrs

from .format import clip

__all__ = ["Fit", "fit", "plain_overhead", "rich_overhead"]

Step = str | int


def plain_overhead(columns: int) -> int:
    """Two spaces between columns, none at the edges."""
    return 2 * max(columns - 1, 0)


def rich_overhead(columns: int) -> int:
    """rich's ``SIMPLE_HEAD`` box: one space of padding each side of a cell, one between cells and at each edge."""
    return 3 * columns + 1


@attrs.frozen(kw_only=True)
class Fit:
    """The columns to show (``keep``, by index), their widths, and the most characters a text column may show."""

    keep: tuple[int, ...]
    widths: tuple[int, ...]
    texts: frozenset[int]
    text_width: int | None = None
    dropped: tuple[str, ...] = ()

    def cells(self, row: Sequence[str]) -> tuple[str, ...]:
        """``row`` with the left-out columns removed and its text cells clipped."""
        return tuple(
            clip(row[i], self.text_width) if self.text_width is not None and i in self.texts else row[i]
            for i in self.keep
        )


def fit(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None,
    text_cols: int | Collection[int] = 1,
    steps: Sequence[Step] = (),
    overhead: Callable[[int], int] = plain_overhead,
) -> Fit:
    """How to show ``head`` and ``rows`` in ``width`` characters (``None``: however wide it is).

    Text columns (the first ``text_cols``, or those indices) may be clipped;
    the others are figures and are shown whole or not at all. Steps naming a
    column that is not in ``head`` are skipped. A table that still does not fit
    after every step is shown as narrow as the steps allow.
    """
    texts = frozenset(range(text_cols) if isinstance(text_cols, int) else text_cols)
    natural = [max((len(r[i]) for r in (head, *rows)), default=0) for i in range(len(head))]
    keep = list(range(len(head)))
    cap: int | None = None

    def shown(i: int, limit: int | None) -> int:
        return min(natural[i], limit) if limit is not None and i in texts else natural[i]

    def total(limit: int | None) -> int:
        return sum(shown(i, limit) for i in keep) + overhead(len(keep))

    def done() -> Fit:
        dropped = tuple(head[i] for i in range(len(head)) if i not in keep)
        clipped = cap if cap is not None and any(natural[i] > cap for i in keep if i in texts) else None
        widths = tuple(shown(i, clipped) for i in keep)
        return Fit(keep=tuple(keep), widths=widths, texts=texts, text_width=clipped, dropped=dropped)

    if width is None or total(None) <= width:
        return done()
    for step in steps:
        if isinstance(step, int):
            # The widest cap, no narrower than the step, that makes the table fit.
            widest = max((natural[i] for i in keep if i in texts), default=0)
            floor = step if cap is None else min(cap, step)
            cap = next((c for c in range(min(widest, cap or widest), floor - 1, -1) if total(c) <= width), floor)
        elif step in head and head.index(step) in keep:
            keep.remove(head.index(step))
        if total(cap) <= width:
            break
    if cap is not None:
        # Columns left out after the text was clipped may have made room: give it back.
        widest = max((natural[i] for i in keep if i in texts), default=0)
        cap = next((c for c in range(widest, cap, -1) if total(c) <= width), cap)
    return done()

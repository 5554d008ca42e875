"""Fitting a table to a width: which columns go, and how far text is clipped."""

from __future__ import annotations

from fluxgate._report.layout import fit, plain_overhead, rich_overhead

HEAD = ("feature", "calls", "cost", "reasoning", "p50 ms")
ROWS = [("summarize-tickets", "12", "$1.50", "1,234", "200"), ("chat", "3", "$0.25", "0", "90")]
STEPS = ("reasoning", 10, "p50 ms", 6)


def width(shape_widths: tuple[int, ...]) -> int:
    return sum(shape_widths) + plain_overhead(len(shape_widths))


class TestFit:
    """fit() takes the table's steps in order, only as far as it must."""

    def test_fits_already(self) -> None:
        """A table narrower than the width, or no width at all, keeps every column whole."""
        for limit in (None, 200):
            shape = fit(HEAD, ROWS, width=limit, steps=STEPS)
            assert (shape.keep, shape.text_width, shape.dropped) == ((0, 1, 2, 3, 4), None, ())

    def test_drops_first_step(self) -> None:
        """Just too wide: only the first step's column goes."""
        full = width(fit(HEAD, ROWS, width=None).widths)
        shape = fit(HEAD, ROWS, width=full - 1, steps=STEPS)
        assert shape.dropped == ("reasoning",)
        assert shape.text_width is None
        assert width(shape.widths) <= full - 1

    def test_clips_text_no_further_than_needed(self) -> None:
        """A clip step cuts text columns only as much as the width needs, never below the step."""
        shape = fit(HEAD, ROWS, width=35, steps=STEPS)
        assert shape.dropped == ("reasoning",)
        assert shape.text_width == 13  # 35 - (5 + 5 + 6 figures) - 6 between the columns
        assert width(shape.widths) == 35
        assert shape.cells(ROWS[0])[0].endswith("\N{HORIZONTAL ELLIPSIS}")
        assert len(shape.cells(ROWS[0])[0]) == shape.text_width

    def test_gives_room_back(self) -> None:
        """Text clipped before a column was dropped gets back the room the drop made."""
        shape = fit(HEAD, ROWS, width=24, steps=("reasoning", 4, "p50 ms"))
        assert shape.dropped == ("reasoning", "p50 ms")
        assert shape.text_width == 10  # not 4: dropping "p50 ms" made room
        assert width(shape.widths) == 24

    def test_as_narrow_as_the_steps_allow(self) -> None:
        """When every step is taken and it still does not fit, it is as narrow as the steps allow."""
        shape = fit(HEAD, ROWS, width=5, steps=STEPS)
        assert shape.keep == (0, 1, 2)
        assert shape.text_width == 6

    def test_text_columns_by_index(self) -> None:
        """Text columns may be named by index anywhere in the row; figures are never clipped."""
        head, rows = ("n", "name", "cost"), [("1", "x" * 30, "$100.00")]
        shape = fit(head, rows, width=20, text_cols={1}, steps=(8,))
        assert shape.cells(rows[0])[0] == "1"
        assert shape.cells(rows[0])[2] == "$100.00"
        assert len(shape.cells(rows[0])[1]) <= 13

    def test_rich_overhead(self) -> None:
        """rich's boxes take three characters a column and one more."""
        assert (rich_overhead(1), rich_overhead(4)) == (4, 13)

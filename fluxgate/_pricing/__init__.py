"""What a call costs: the price table as data (``prices.json``) and exact pricing.

``rows`` parses and checks the table's rows; ``table`` resolves a model id to
its row and prices a usage with every billing modifier; ``bill`` does that
arithmetic in integers, and writes its exact figures as Decimal text;
``compare`` sets the table beside another one.
"""

from __future__ import annotations

from .bill import ExactCost, Figure, figure_float, figure_pico, figure_text, to_decimal
from .compare import Disagreement, OtherTable, compare, genai_prices_table
from .table import COMPONENTS, LongContext, PriceRow, PriceTable, Rates, Resolution, default_table

__all__ = [
    "COMPONENTS",
    "Disagreement",
    "ExactCost",
    "Figure",
    "LongContext",
    "OtherTable",
    "PriceRow",
    "PriceTable",
    "Rates",
    "Resolution",
    "compare",
    "default_table",
    "figure_float",
    "figure_pico",
    "figure_text",
    "genai_prices_table",
    "to_decimal",
]

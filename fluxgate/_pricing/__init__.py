"""What a call costs: the price table as data (``prices.json``) and exact pricing.

``rows`` parses and checks the table's rows; ``table`` resolves a model id to
its row and prices a usage with every billing modifier, in exact decimals.
"""

from __future__ import annotations

from .table import COMPONENTS, LongContext, PriceRow, PriceTable, Rates, Resolution, default_table

__all__ = ["COMPONENTS", "LongContext", "PriceRow", "PriceTable", "Rates", "Resolution", "default_table"]

"""The store's report as typed rows, for notebooks and scripts (a SQLite file or PostgreSQL).

``query`` runs the report ``fluxgate report`` prints, with the same exact sums,
and returns one :class:`Row` per group; :meth:`Rows.to_pandas` makes a
DataFrame of them when pandas is installed. Nothing here writes to the store.

>>> from fluxgate.report import query
>>> rows = query(by="feature", since="7d")                      # doctest: +SKIP
>>> [(r.feature, r.cost_usd) for r in rows]                     # doctest: +SKIP
[('summarize', Decimal('1.2345')), ('chat', Decimal('0.5'))]
>>> rows.to_pandas()                                            # doctest: +SKIP

This module is imported only when used: ``import fluxgate`` does not load it.
"""

from __future__ import annotations

from ._report import GROUPS, SORTS, WHERE_KEYS, ReportError, Row, Rows, query

__all__ = ["GROUPS", "SORTS", "WHERE_KEYS", "ReportError", "Row", "Rows", "query"]

"""Events are storable at the edge: hostile end-user values are made safe or refused where they enter."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest

from fluxgate import AiEventUser, ContextFrame, track_context

LONE = json.loads('"eve\\ud800"')  # a user id with a lone surrogate, as JSON can carry one


class TestStorableAtTheEdge:
    def test_lone_surrogate_is_replaced(self) -> None:
        """A lone surrogate in a user id or a scope field becomes '?', so every sink can encode it."""
        user = AiEventUser(LONE)
        frame = ContextFrame.build(feature=LONE, step=LONE, session_id=LONE, conversation_id=LONE)
        for text in (user.id, frame.feature, frame.step, frame.session_id, frame.conversation_id):
            assert text == "eve?"
            assert text.encode("utf-8")

    @pytest.mark.parametrize("revenue", [Decimal("49"), Fraction(49), 49, 49.0])
    def test_any_real_number_is_revenue(self, revenue: object) -> None:
        """monthly_revenue takes int, float, Decimal and Fraction, and stores a JSON-ready float."""
        user = AiEventUser("u1", monthly_revenue=revenue)  # type: ignore[arg-type]
        assert user.monthly_revenue == 49.0
        assert json.dumps(user.to_dict())

    @pytest.mark.parametrize("revenue", [float("inf"), float("nan"), -1, 1e13, Decimal("1e400")])
    def test_revenue_out_of_range(self, revenue: object) -> None:
        """Revenue that is not finite, negative or absurd is refused naming the field."""
        with pytest.raises(ValueError, match="monthly_revenue"):
            AiEventUser("u1", monthly_revenue=revenue)  # type: ignore[arg-type]

    def test_revenue_must_be_a_number(self) -> None:
        """A string is not revenue."""
        with pytest.raises(TypeError, match="monthly_revenue"):
            AiEventUser("u1", monthly_revenue="49")  # type: ignore[arg-type]

    def test_metadata_too_deep_or_too_large(self) -> None:
        """Metadata nested past 16 levels, or over 64 KiB as JSON, is refused at the scope."""
        deep: dict[str, object] = {}
        node = deep
        for _ in range(20):
            node["k"] = {}
            node = node["k"]  # type: ignore[assignment]
        with pytest.raises(ValueError, match="nest"):
            track_context(metadata=deep)
        with pytest.raises(ValueError, match="characters"):
            track_context(metadata={"blob": "x" * 70_000})

    def test_int_user_is_its_decimal_string(self) -> None:
        """user=123 is stored as the id '123'."""
        assert ContextFrame.build(user=123).user_id == "123"

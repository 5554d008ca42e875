"""The JSON of events (JSONL files, spill files, HTTP batches): exact, fast, and always storable."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxgate import AiEventUser, Status
from fluxgate._store.lines import clean_text, encode, event_dict, event_from_dict, event_line

from .conftest import make_event

SURROGATE = json.loads('"eve\\ud800"')


class TestEventDict:
    @given(
        tokens=st.integers(min_value=0, max_value=10**20),
        cost=st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=12),
        feature=st.none() | st.text(min_size=1),
        metadata=st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
        status=st.sampled_from(Status),
    )
    def test_same_as_to_dict(
        self, tokens: int, cost: Decimal | None, feature: str | None, metadata: dict[str, object] | None, status: Status
    ) -> None:
        """event_dict() is CostEvent.to_dict(), key for key and in the same order."""
        event = make_event(input_tokens=tokens, cost_usd=cost, feature=feature, metadata=metadata, status=status)
        expected = event.to_dict()
        got = event_dict(event)
        assert got == expected
        assert list(got) == list(expected)

    def test_round_trip(self) -> None:
        """A line parses back into the event it was made from."""
        event = make_event(user=AiEventUser("u1", name="Ada", monthly_revenue=49.5), user_id="u1", metadata={"k": 1})
        assert event_from_dict(json.loads(event_line(event))) == event


class TestStorable:
    def test_lone_surrogates_become_replacement_characters(self) -> None:
        """Text UTF-8 cannot carry is stored with U+FFFD, wherever it is in the event."""
        event = make_event(feature=SURROGATE, user_id=SURROGATE, metadata={SURROGATE: [SURROGATE]})
        data = json.loads(event_line(event))
        assert data["feature"] == data["user_id"] == "eve\ufffd"
        assert data["metadata"] == {"eve\ufffd": ["eve\ufffd"]}

    @pytest.mark.parametrize(
        ("revenue", "stored"), [(Decimal("49"), 49), (Decimal("49.5"), 49.5), (Fraction(1, 4), 0.25)]
    )
    def test_revenue_as_any_real(self, revenue: object, stored: float) -> None:
        """A revenue given as a Decimal or a Fraction is written as its number."""
        with attrs.validators.disabled():
            user = AiEventUser("u1", monthly_revenue=revenue)  # type: ignore[arg-type]
        data = json.loads(event_line(make_event(user=user, user_id="u1")))
        assert data["user"]["monthly_revenue"] == stored

    def test_non_finite_floats_become_null(self) -> None:
        """NaN and infinities, which JSON has no form for, become null."""
        data = json.loads(event_line(make_event(latency_ms=float("nan"), metadata={"x": float("inf")})))
        assert data["latency_ms"] is None
        assert data["metadata"] == {"x": None}

    def test_huge_costs_stay_exact(self) -> None:
        """A cost of any size keeps every digit."""
        cost = Decimal("123456789012345678901234567890.123456789012")
        assert json.loads(event_line(make_event(cost_usd=cost)))["cost_usd"] == str(cost)

    def test_what_json_has_no_form_for_raises(self) -> None:
        """A value of no JSON type raises TypeError, so the flusher sets its event aside."""
        with pytest.raises(TypeError):
            event_line(make_event(metadata=MappingProxyType({"when": object()})))

    def test_encode_is_compact_utf8(self) -> None:
        """encode() writes compact JSON, non-ASCII text as UTF-8."""
        assert encode({"a": "é", "b": [1]}) == '{"a":"é","b":[1]}'.encode()

    def test_clean_text_leaves_good_text_alone(self) -> None:
        """Text without lone surrogates comes back as the same object."""
        text = "naïve 🙂"
        assert clean_text(text) is text

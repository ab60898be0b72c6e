"""What the sessions share: the fixed calendar of simulations."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from pingpong.session import FixedCalendar


def test_fixed_calendar_is_utc_as_fromtimestamp_gives_it() -> None:
    calendar = FixedCalendar()
    draw = random.Random(4)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    for n in range(20_000):
        instant = start + draw.uniform(0, 3 * 86_400)
        if n % 2:  # near a millisecond or a second, where rounding matters
            instant = round(instant, draw.choice([0, 3])) + draw.choice([0, 5e-7, -5e-7, 4e-7])
        expected = datetime.fromtimestamp(instant, timezone.utc).replace(tzinfo=None)
        assert calendar(instant) == expected, instant


def test_fixed_calendar_with_an_offset_and_instants_out_of_order() -> None:
    calendar = FixedCalendar(timedelta(hours=3))
    assert calendar(86_400.25) == datetime(1970, 1, 2, 3, 0, 0, 250_000)
    assert calendar(0.0) == datetime(1970, 1, 1, 3, 0, 0)
    assert calendar(86_399.9999996) == datetime(1970, 1, 2, 3, 0, 0)  # rounds up a second

"""What the sessions share: the calendar that shows their instants as the logs' local time."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from pingpong.logformat import stamp
from pingpong.session import Calendar

START = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()


def instants(count: int) -> list[float]:
    """Random instants over three days, half of them just around a millisecond or a second,
    where rounding to microseconds decides the millisecond shown."""
    draw = random.Random(4)
    found = []
    for n in range(count):
        instant = START + draw.uniform(0, 3 * 86_400)
        if n % 2:
            instant = round(instant, draw.choice([0, 3])) + draw.choice([0, 5e-7, -5e-7, 4e-7])
        found.append(instant)
    return found


def test_a_fixed_offset_shows_what_fromtimestamp_shows() -> None:
    for offset in (timedelta(0), timedelta(hours=-5, minutes=-30)):
        calendar = Calendar(offset)
        for instant in instants(20_000):
            expected = (datetime.fromtimestamp(instant, timezone.utc) + offset).replace(tzinfo=None)
            assert calendar(instant) == expected, instant
            assert calendar.stamp(instant) == stamp(expected), instant


def test_local_time_is_what_datetime_now_would_show() -> None:
    calendar = Calendar()
    for instant in instants(5_000):
        expected = datetime.fromtimestamp(instant)
        assert calendar(instant) == expected
        assert calendar.stamp(instant) == stamp(expected)


def test_instants_out_of_order_and_a_second_rounded_up() -> None:
    calendar = Calendar(timedelta(hours=3))
    assert calendar(86_400.25) == datetime(1970, 1, 2, 3, 0, 0, 250_000)
    assert calendar.stamp(0.0) == "1970-01-01;03:00:00.000"
    assert calendar.stamp(86_399.9999996) == "1970-01-02;03:00:00.000"  # rounds up a second
    assert calendar.stamp(86_399.9994) == "1970-01-02;02:59:59.999"

"""The hour-of-week forecast puts each hour's load at that hour, whatever hour its history starts at."""

from __future__ import annotations

import numpy as np
import pytest

from demand.forecast import HourOfWeekForecast, hour_of_week

MONDAY = 4 * 86400 + 52 * 7 * 86400  # a Monday, 00:00 UTC


@pytest.mark.parametrize("first_hour", [0, 11, 23])
def test_load_that_comes_at_eleven_each_day_is_forecast_at_eleven(first_hour):
    start = MONDAY + first_hour * 3600
    hours = 14 * 24 + 5  # two weeks and a piece, ending mid-day
    series = np.array([10.0 if (first_hour + i) % 24 == 11 else 0.0 for i in range(hours)])
    forecast = HourOfWeekForecast().fit(series, start)
    later = MONDAY + 21 * 86400  # a Monday after the history
    by_hour = forecast.predict(later, 24)
    assert hour_of_week(later) == 0
    assert by_hour.argmax() == 11 and by_hour[11] == pytest.approx(10.0)
    assert by_hour.sum() == pytest.approx(10.0)


def test_less_than_one_whole_day_is_its_mean():
    forecast = HourOfWeekForecast().fit(np.array([3.0] * 20), MONDAY + 7 * 3600)
    assert np.allclose(forecast.profile, 3.0)

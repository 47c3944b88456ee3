"""Hypothesis strategies shared by the tests of hand-written representations."""

import datetime
import zoneinfo

from hypothesis import strategies as st

# Aware datetimes from 1971 to 2200 in UTC and in zones with DST and half-hour offsets.
moments = st.datetimes(
    min_value=datetime.datetime(1971, 1, 1),
    max_value=datetime.datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [datetime.UTC, zoneinfo.ZoneInfo("Europe/Paris"), zoneinfo.ZoneInfo("Asia/Kolkata")]
    ),
)

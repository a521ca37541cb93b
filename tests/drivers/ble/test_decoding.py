"""What a notification decodes to, where the stack adds something of its own."""

from __future__ import annotations

import pytest

from drivers.ble.decoding import decode
from drivers.errors import DecodeError
from drivers.polar import pmd
from drivers.polar.pmd_settings import encode_features


def test_the_feature_reads_own_value_on_the_control_points_handler_is_not_malformed() -> None:
    """Test the value BlueZ hands to the control point's indication handler after the feature
    read (a read of a characteristic whose indications are on): nothing to use, not counted as
    malformed; anything else that is not a response still is."""
    assert decode(pmd.PMD_CONTROL_POINT, encode_features(("ecg", "acc")), {}) is None
    with pytest.raises(DecodeError, match="not a control point response"):
        decode(pmd.PMD_CONTROL_POINT, b"\x7e\x02\x03\x04", {})

"""Hypothesis strategies for GATT field types: valid SFLOAT/FLOAT values and Date Times."""

from __future__ import annotations

from hypothesis import strategies as st

from drivers.gatt import ieee11073
from drivers.gatt.fields import DateTime
from drivers.gatt.ieee11073 import MedFloat


def medfloats(bits: int = 16) -> st.SearchStrategy[MedFloat]:
    """Any value of the format, special values included, exactly as a device may send it."""
    mantissa_bits, exponent_bits = (12, 4) if bits == 16 else (24, 8)
    numbers = st.builds(
        MedFloat,
        st.integers(-(1 << (mantissa_bits - 1)) + 3, (1 << (mantissa_bits - 1)) - 3),
        st.integers(-(1 << (exponent_bits - 1)), (1 << (exponent_bits - 1)) - 1),
        st.just(bits),
    ).filter(lambda m: m.special is None)
    specials = st.sampled_from(list(ieee11073.Special)).map(lambda k: ieee11073.special(k, bits))
    return numbers | specials


date_times = st.builds(
    DateTime,
    st.sampled_from([0]) | st.integers(1582, 9999),
    st.integers(0, 12),
    st.integers(0, 31),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)

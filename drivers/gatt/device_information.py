"""Device Information Service (0x180A): the UTF-8 string characteristics."""

from __future__ import annotations

from drivers.errors import DecodeError

PROFILE = "device_information"

# characteristic (16-bit UUID) -> the key it is reported under
STRING_CHARACTERISTICS = {
    0x2A29: "manufacturer_name",
    0x2A24: "model_number",
    0x2A25: "serial_number",
    0x2A27: "hardware_revision",
    0x2A26: "firmware_revision",
    0x2A28: "software_revision",
}


def decode_device_information_string(data: bytes | bytearray) -> str:
    """A UTF-8 string; trailing NULs, which some devices pad with, are dropped."""
    try:
        return bytes(data).rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(PROFILE, f"not UTF-8 at byte {exc.start}") from None

"""Movesense sensors: the GATT SensorData Protocol (GSP) and its resources' data.

Pure decoders and encoders; imports only ``drivers.errors``.
"""

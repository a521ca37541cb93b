"""The benchmarks' MQTT subscriber, in a process of its own (issue 21).

Prints one line per message: ``arrived device_id kind timestamp``, ``arrived`` the epoch second
it was read off the socket. In its own process so that nothing the benchmark does between
polls (reading the outbox at a kill, a garbage collection of its own) delays the stamp: in the
benchmark's process those stalls added up to 50 ms to the measured latency.

Usage: python bench/subscriber.py PORT TOPIC
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time

import aiomqtt


async def main(port: int, topic: str) -> None:
    out = sys.stdout
    while True:
        try:
            async with aiomqtt.Client("127.0.0.1", port) as client:
                await client.subscribe(topic, qos=1)
                async for message in client.messages:
                    arrived = time.time()
                    assert isinstance(message.payload, bytes)
                    body = json.loads(message.payload)
                    fields = (body["device_id"], body["kind"], body["timestamp"])
                    out.write(f"{arrived:.6f} {' '.join(fields)}\n")
                    out.flush()
        except aiomqtt.MqttError:
            await asyncio.sleep(0.2)  # a broker restart


if __name__ == "__main__":
    gc.freeze()  # what the imports made is never collected: a collection then costs little
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))

"""``wgw diffusets``: 12-lead ECG images for a clinical text, from the HeartVoice API, as PNGs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from gateway.cli.common import load
from gateway.clients.heartvoice import HeartVoiceClient
from gateway.errors import SinkError
from gateway.retry import retrying

if TYPE_CHECKING:
    import argparse

    from gateway.config import Settings


def arguments(parser: argparse.ArgumentParser) -> None:
    """The text and the patient it describes, how many images, the output folder."""
    parser.add_argument("--text", required=True, help="diagnoses joined by |")
    parser.add_argument("--age", type=int, required=True)
    parser.add_argument("--sex", choices=("M", "F"), required=True)
    parser.add_argument("--hr", type=int, required=True, help="heart rate (bpm)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs")


def run(args: argparse.Namespace) -> int:
    """Write the images; 1 on a failed call."""
    settings = load(args)
    return asyncio.run(
        _diffusets(
            settings,
            args.text,
            age=args.age,
            sex=args.sex,
            hr=args.hr,
            batch=args.batch,
            out=args.out,
        )
    )


async def _diffusets(
    settings: Settings, text: str, *, age: int, sex: str, hr: int, batch: int, out: Path
) -> int:
    """Write ``diffusets_<n>.png`` for each image the API returns; 1 on a failed call."""
    try:
        async with aiohttp.ClientSession() as session:
            client = HeartVoiceClient(session, settings.cloud.heartvoice)
            images = await retrying(lambda: client.diffusets(text.split("|"), age, sex, hr, batch))
    except SinkError as exc:
        print(f"error: {exc} (code {exc.code})", file=sys.stderr)
        return 1
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    for n, png in enumerate(images, start=1):
        path = out / f"diffusets_{n}.png"
        await asyncio.to_thread(path.write_bytes, png)
        print(path)
    return 0

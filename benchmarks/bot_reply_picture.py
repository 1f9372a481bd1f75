"""Draw what the bot answers to a room photo (docs/bot-objects.png), from a real run.

The real bot and `SearchService` (EfficientNet-Lite0, packaged weights) serve a tiny index of
four drawn products over the loopback Bot API (tests/telegram_api); a synthetic room made of
the same drawings (tests/synthetic.py) is sent as a photo, and the messages the bot sent (the
annotated photo with its buttons, the first object's album and its header) are drawn as a chat
would show them. Everything drawn is synthetic, so the picture may be committed.

    .venv/bin/python benchmarks/bot_reply_picture.py --out docs/bot-objects.png

With `--index DIR --room PHOTO` it sends a real room against a real Lite0 index instead; such
pictures show catalog photos and stay out of the repository (benchmarks/out/ is ignored). The
index must be built with `--objects`, and the photo must be one its room probe calls a room
(a photo of one piece gets its album without boxes, which this script would wait for):

    .venv/bin/python benchmarks/bot_reply_picture.py --index IKEA_INDEX \
        --room ../shared/data/ikea-rooms/rooms/ROOM.jpg --out benchmarks/out/bot-room.png
"""

import argparse
import asyncio
import io
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.build import BuildOptions, build_index
from retrieval.extractor import Extractor
from retrieval.index_store import open_index
from retrieval.search import SearchService
from tests.synthetic import FURNITURE, compose_room, draw_furniture, jpeg_bytes
from tests.telegram_api import BotApiServer
from tests.telegram_api.harness import bot_settings, results, running_bot
from tests.telegram_api.server import Call

WIDTH, PAD, THUMB = 520, 12, 92
USER = 42


async def converse(service: SearchService, index_dir: Path, room: bytes) -> list[Call]:
    """Send `room` to the running bot twice (cold, then warm: a new file id, so no cache);
    the annotated photo, the album and its buttons of the first, and both latencies."""
    async with BotApiServer(lifetime=300) as server:
        lite0 = {"backbone": "efficientnet-lite0", "weights": "imagenet", "input_size": 224}
        settings = bot_settings(server, index_dir, objects=True, **lite0)
        async with running_bot(settings, service):
            calls: list[Call] = []
            for run in ("cold", "warm"):
                mark, started = len(server.calls), time.perf_counter()
                await server.send_photo(USER, room)
                picture = await server.reply(USER, "sendPhoto", start=mark, timeout=120)
                album, header = await results(server, USER, server.calls.index(picture))
                print(
                    f"{run}: photo sent → album received in {time.perf_counter() - started:.2f} s"
                )
                calls = calls or [picture, album, header]
    return calls


def draw_chat(picture: Call, album: Call, header: Call) -> Image.Image:
    """The three messages, top to bottom, as a chat shows them."""
    font, small = _font(15), _font(12)
    [photo_bytes] = picture.files.values()
    with Image.open(io.BytesIO(photo_bytes)) as sent:
        photo = sent.convert("RGB")
    photo.thumbnail((WIDTH - 2 * PAD, WIDTH), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (WIDTH, 1200), "#dfe7ee")
    draw = ImageDraw.Draw(canvas)
    y = PAD
    canvas.paste(photo, (PAD, y))
    y += photo.height + 6
    for line in _wrap(picture.params["caption"], 62):
        draw.text((PAD, y), line, fill="black", font=small)
        y += 16
    y = _keyboard(draw, picture, y + 4, font)
    y += PAD
    for i, data in enumerate(album.media_bytes()):
        with Image.open(io.BytesIO(data)) as tile:
            thumb = tile.convert("RGB").resize((THUMB, THUMB))
        x = PAD + i * (THUMB + 6)
        canvas.paste(thumb, (x, y))
        title = album.captions()[i].splitlines()[0]
        draw.text((x, y + THUMB + 2), title[:14], fill="black", font=small)
    y += THUMB + 22
    draw.text((PAD, y), header.params["text"], fill="black", font=small)
    y = _keyboard(draw, header, y + 20, font)
    return canvas.crop((0, 0, WIDTH, y + PAD))


def _keyboard(draw: ImageDraw.ImageDraw, call: Call, y: int, font) -> int:
    for row in call.params["reply_markup"]["inline_keyboard"]:
        width = (WIDTH - 2 * PAD - 4 * (len(row) - 1)) // len(row)
        for i, button in enumerate(row):
            x = PAD + i * (width + 4)
            draw.rounded_rectangle((x, y, x + width, y + 28), 6, fill="#8aa3b8")
            draw.text(
                (x + width // 2, y + 14), button["text"], fill="white", font=font, anchor="mm"
            )
        y += 32
    return y


def _font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu where installed (it has the en dash), else Pillow's own."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/bot-objects.png"))
    parser.add_argument("--index", type=Path, help="a published Lite0 index (default: drawings)")
    parser.add_argument("--room", type=Path, help="the room photo to send (with --index)")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)  # benchmarks/out/ is not in a clone
    extractor = Extractor("efficientnet-lite0", "imagenet")
    with tempfile.TemporaryDirectory() as folder:
        index_dir, room = args.index, args.room.read_bytes() if args.room else None
        if index_dir is None:
            index_dir, room = _drawings(Path(folder), extractor)
        service = SearchService(extractor, open_index(index_dir), index_dir)
        calls = asyncio.run(converse(service, index_dir, room))
        chat = draw_chat(*calls)
    for label, _ in calls[0].buttons():
        print(label)
    print(calls[2].params["text"])
    print("\n".join(c.splitlines()[0] + "  " + c.splitlines()[1] for c in calls[1].captions()))
    chat.quantize(colors=128).save(args.out, optimize=True)  # a small file to commit
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


def _drawings(root: Path, extractor: Extractor) -> tuple[Path, bytes]:
    """A four-product index of drawings under `root`, and a room made of them as a JPEG."""
    for kind in FURNITURE:
        (root / "catalog" / kind).mkdir(parents=True)
        draw_furniture(kind).save(root / "catalog" / kind / f"{kind}.jpg", quality=95)
    build_index(
        root / "catalog", root / "index", extractor, BuildOptions(progress=False, objects=True)
    )
    image, _ = compose_room(FURNITURE)
    return root / "index", jpeg_bytes(Image.fromarray(image))


if __name__ == "__main__":
    raise SystemExit(main())

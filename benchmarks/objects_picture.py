"""Draw the objects snapfind finds in a synthetic room (docs/objects-synthetic.png).

A tiny index of four drawn products is built in a temporary folder; the room is composed
from the same drawings (tests/synthetic.py), so the picture may be committed. The annotated
IKEA rooms come from `rooms_bench.py --annotate DIR` and stay out of the repository.

    .venv/bin/python benchmarks/objects_picture.py --out docs/objects-synthetic.png
"""

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.build import BuildOptions, build_index
from retrieval.annotate import draw_objects
from retrieval.extractor import Extractor
from retrieval.index_store import open_index
from retrieval.objects import ObjectFinder
from retrieval.regions import region_encoder_for
from tests.synthetic import FURNITURE, compose_room, draw_furniture


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/objects-synthetic.png"))
    args = parser.parse_args()
    extractor = Extractor("efficientnet-lite0", "imagenet")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for kind in FURNITURE:
            (root / "catalog" / kind).mkdir(parents=True)
            draw_furniture(kind).save(root / "catalog" / kind / f"{kind}.jpg", quality=95)
        build_index(
            root / "catalog", root / "index", extractor, BuildOptions(progress=False, objects=True)
        )
        finder = ObjectFinder(region_encoder_for(extractor), open_index(root / "index"))
        image, _ = compose_room(FURNITURE)
        found = finder.find(image, k=1)
    for number, item in enumerate(found, 1):
        print(
            f"{number} · {item.label}  {item.score:.3f}  {item.box.as_tuple()}  "
            f"→ {item.hits[0].product.title}"
        )
    picture = draw_objects(image, found)
    picture.thumbnail((480, 480), Image.Resampling.LANCZOS)
    picture.quantize(colors=64).save(args.out, optimize=True)  # a small file to commit
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

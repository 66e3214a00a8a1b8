"""Copy an ImageFolder tree (split/class/image) with every image resized to SIZE x SIZE (bicubic, JPEG q95).

    python benchmarks/resize_folder.py ../shared/data/imagenette-128 runs/imagenette-32 --size 32

For evidence runs that need a second real set at another resolution (issue 11's stand-in backbone).
Skips the copy when the output exists; writes through a temporary folder and a rename.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flashdd_zoo.atomic import atomic_dir  # noqa: E402

SUFFIXES = {".jpg", ".jpeg", ".png"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, required=True)
    args = parser.parse_args()
    if args.out.is_dir():
        print(f"{args.out} exists; kept")
        return
    count = 0
    with atomic_dir(args.out) as tmp:
        for path in sorted(args.src.rglob("*")):
            rel = path.relative_to(args.src)
            if path.is_file() and path.suffix.lower() in SUFFIXES:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                with Image.open(path) as im:
                    im.convert("RGB").resize((args.size, args.size), Image.BICUBIC).save(
                        (tmp / rel).with_suffix(".jpg"), quality=95)
                count += 1
            elif path.is_file() and path.suffix == ".json":
                shutil.copyfile(path, tmp / rel)
    print(f"{count} images at {args.size} px -> {args.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""An ImageFolder-style loader (torchvision.datasets.ImageFolder's rules, without torch):
classes are the sorted subdirectories of ROOT, samples the files under each class (walked
recursively, sorted) whose names end in an image extension; each sample is its path
relative to ROOT, its class index and the digest of its bytes, read in a shuffled order
by --threads readers. Prints one line per sample in sample order, then a summary on
stderr, so the output over a packed mount and over the extracted tree can be compared.

  imagefolder.py ROOT [--threads N] [--seed S]
"""
import argparse
import concurrent.futures
import hashlib
import os
import random
import sys
import time

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def samples(root):
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    out = []
    for index, name in enumerate(classes):
        for dirpath, dirnames, filenames in sorted(os.walk(os.path.join(root, name), followlinks=True)):
            dirnames.sort()
            for f in sorted(filenames):
                if f.lower().endswith(EXTENSIONS):
                    out.append((os.path.relpath(os.path.join(dirpath, f), root), index))
    return classes, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    classes, items = samples(a.root)
    order = list(range(len(items)))
    random.Random(a.seed).shuffle(order)

    def load(i):
        with open(os.path.join(a.root, items[i][0]), "rb") as f:
            return i, hashlib.sha256(f.read()).hexdigest()

    digests = [None] * len(items)
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(a.threads) as pool:
        for i, d in pool.map(load, order):
            digests[i] = d
    secs = time.monotonic() - start
    for (path, index), d in zip(items, digests):
        print(f"{index} {path} {d}")
    print(f"{len(classes)} classes, {len(items)} samples in {secs:.2f}s", file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reads files for a benchmark: readfiles.py ROOT LIST THREADS [--shuffle SEED] [--stat].
LIST holds paths relative to ROOT, one per line. Prints: seconds files bytes."""
import os
import random
import sys
import threading
import time

root, listfile, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
args = sys.argv[4:]
files = [l.rstrip("\n") for l in open(listfile) if l.strip()]
if "--shuffle" in args:
    random.Random(int(args[args.index("--shuffle") + 1])).shuffle(files)
stat_only = "--stat" in args
total = [0]
lock = threading.Lock()
errors = []


def work(part):
    n = 0
    for rel in part:
        path = os.path.join(root, rel)
        try:
            if stat_only:
                os.stat(path)
                continue
            with open(path, "rb", buffering=0) as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    n += len(b)
        except OSError as e:
            errors.append(f"{rel}: {e}")
    with lock:
        total[0] += n


parts = [files[i::threads] for i in range(threads)]
start = time.monotonic()
ts = [threading.Thread(target=work, args=(p,)) for p in parts]
for t in ts:
    t.start()
for t in ts:
    t.join()
elapsed = time.monotonic() - start
if errors:
    print(f"{len(errors)} errors, e.g. {errors[0]}", file=sys.stderr)
    sys.exit(1)
print(f"{elapsed:.4f} {len(files)} {total[0]}")

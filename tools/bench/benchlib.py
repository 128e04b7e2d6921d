"""Helpers the benchmark programs share: shell commands, page-cache drops, FUSE mounts."""
import os
import socket
import subprocess
import time


def sh(cmd, check=True, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=check, text=True, **kw)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def is_mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def wait_mounted(path, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if is_mounted(path):
            try:
                os.listdir(path)
                return
            except OSError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"{path} did not mount")


def unmount(path):
    if is_mounted(path):
        sh(["fusermount3", "-u", path], check=False)
        if is_mounted(path):
            sh(["umount", "-l", path], check=False)
    time.sleep(0.3)


class Results:
    """Values by row and system over several runs; table() prints medians (min-max) and each
    system's ratio to a reference system."""

    def __init__(self, reference):
        self.reference = reference
        self.rows = {}  # row -> system -> [values]
        self.units = {}

    def record(self, row, system, value, unit):
        self.rows.setdefault(row, {}).setdefault(system, []).append(value)
        self.units[row] = unit

    def median(self, row, system):
        import statistics
        return statistics.median(self.rows[row][system])

    def table(self):
        import statistics
        systems = []
        for by in self.rows.values():
            systems += [s for s in by if s not in systems]
        lines = ["| workload | unit | " + " | ".join(systems) + f" | vs {self.reference} |",
                 "|---|---|" + "---|" * len(systems) + "---|"]
        for row, by in self.rows.items():
            med = {s: statistics.median(v) for s, v in by.items()}
            cells = []
            for s in systems:
                v = by.get(s)
                cells.append("–" if not v else f"{med[s]:,.2f}" + (
                    f" ({min(v):,.2f}–{max(v):,.2f})" if len(v) > 1 else ""))
            ref = med.get(self.reference)
            ratios = [f"{s} {m / ref:.2f}×" for s, m in med.items() if s != self.reference and ref]
            lines.append(f"| {row} | {self.units[row]} | " + " | ".join(cells) + " | " + ", ".join(ratios) + " |")
        return "\n".join(lines)

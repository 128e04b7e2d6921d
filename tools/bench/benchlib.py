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

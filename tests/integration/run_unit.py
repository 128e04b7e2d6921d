#!/usr/bin/env python3
"""Runs a systemd service unit the way systemd would, for hosts where systemd is not PID 1.

Usage: run_unit.py UNIT_FILE INSTANCE ENV_FILE

Reads [Service], substitutes %i, loads EnvironmentFile (replaced by ENV_FILE), expands
$VAR (split into words) and ${VAR} (one word) as systemd does, runs ExecStartPre, then
ExecStart with NOTIFY_SOCKET set, waits for READY=1 (Type=notify), prints "ready", waits
for a line on stdin, runs ExecStop, and checks that the main process sent STOPPING=1 and
exited 0. Exits non-zero with a reason otherwise.
"""
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile


def parse_unit(path, instance):
    service, section = {}, None
    for raw in open(path):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            k, v = line.split("=", 1)
            service.setdefault(k, []).append(v.replace("%i", instance))
    return service


def load_env(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k] = v.strip('"')
    return env


def expand(cmd, env):
    out = []
    for word in shlex.split(cmd):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:  # $VAR: the value split at whitespace, empty words dropped
            out.extend(env.get(m.group(1), "").split())
            continue
        out.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda g: env.get(g.group(1), ""), word))
    return out


def main():
    unit, instance, env_file = sys.argv[1:4]
    s = parse_unit(unit, instance)
    if s.get("Type") != ["notify"]:
        sys.exit(f"Type is {s.get('Type')}, not notify")
    env = load_env(env_file)
    for pre in s.get("ExecStartPre", []):
        subprocess.run(expand(pre, env), check=True)
    sock_path = os.path.join(tempfile.mkdtemp(), "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(60)
    main_proc = subprocess.Popen(expand(s["ExecStart"][0], env), env=dict(os.environ, NOTIFY_SOCKET=sock_path))
    messages = []
    while "READY=1" not in messages:
        try:
            messages += sock.recv(4096).decode().split("\n")
        except socket.timeout:
            main_proc.kill()
            sys.exit(f"no READY=1 within 60 s (got {messages})")
        if main_proc.poll() is not None and "READY=1" not in messages:
            sys.exit(f"ExecStart exited {main_proc.returncode} before READY=1")
    print("ready", flush=True)
    sys.stdin.readline()
    # Like systemd, reap the main process while ExecStop runs.
    stops = [subprocess.Popen(expand(stop, env)) for stop in s.get("ExecStop", [])]
    try:
        rc = main_proc.wait(timeout=30)
        for stop in stops:
            if stop.wait(timeout=30) != 0:
                sys.exit(f"ExecStop exited {stop.returncode}")
    except subprocess.TimeoutExpired:
        main_proc.kill()
        sys.exit("still running 30 s after ExecStop")
    sock.settimeout(1)
    try:
        while True:
            messages += sock.recv(4096).decode().split("\n")
    except socket.timeout:
        pass
    if "STOPPING=1" not in messages:
        sys.exit(f"no STOPPING=1 (got {messages})")
    if rc != 0:
        sys.exit(f"main process exited {rc}")
    print("stopped", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Runs the README tour's `pulse recommend` and `curl` examples on a Luxury Beauty bundle and checks that
they print exactly the output the README shows (CI runs it after fitting the bundle from nothing; the fit
is deterministic for its seed, byte for byte).

Usage: python3 scripts/readme_tour_check.py BUNDLE   (pulse at target/release/pulse)
"""
import json
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.request

root = pathlib.Path(__file__).resolve().parent.parent
pulse = str(root / "target/release/pulse")
bundle = sys.argv[1]
readme = (root / "README.md").read_text()
blocks = re.findall(r"```(\w*)\n(.*?)```", readme, re.S)
fails = []


def expect_after(command):
    """The output block that follows the code block containing `command`."""
    for i, (_, body) in enumerate(blocks):
        if command in body:
            return blocks[i + 1][1]
    sys.exit(f"README.md: no block with {command!r}")


def check(what, got, want):
    if got != want:
        fails.append(f"{what}:\n--- README\n{want}--- now\n{got}")


cmd = "pulse recommend --bundle bundles/luxury-beauty --user 1 -k 3"
out = subprocess.run([pulse, "recommend", "--bundle", bundle, "--user", "1", "-k", "3"], capture_output=True, text=True, check=True).stdout
check(cmd, out, expect_after(cmd))

# the near-miss error shown as a comment
line = next(l for b in blocks for l in b[1].splitlines() if l.startswith("# error: no item titled"))
r = subprocess.run([pulse, "recommend", "--bundle", bundle, "--titles", "Mario Badescu Drying Lotion;mario badescu facial sprey"], capture_output=True, text=True)
prefix = line[2:].split("…")[0]
if r.returncode != 1 or not r.stderr.startswith(prefix):
    fails.append(f"titles error: README shows {prefix!r}…, now exit {r.returncode}: {r.stderr.strip()}")

# curl against a real server
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
srv = subprocess.Popen([pulse, "serve", "--bundle", bundle, "--addr", f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    cmd = "curl -s localhost:8080/v1/recommend"
    want = expect_after(cmd)
    body = re.search(r"-d '(.*?)'", next(b for _, b in blocks if cmd in b)).group(1)
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/recommend", data=body.encode(), headers={"content-type": "application/json"})
    got = urllib.request.urlopen(req, timeout=5).read().decode() + "\n"
    check(cmd, got, want)
finally:
    srv.terminate()
    srv.wait(timeout=10)
if fails:
    sys.exit("README tour output differs from what the commands print now:\n" + "\n".join(fails))
print("README tour: pulse recommend and curl print what README.md shows")

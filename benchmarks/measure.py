#!/usr/bin/env python3
"""Runs a command; prints its wall time in seconds and its peak RSS in KiB.

With --status first, a failing command is not an error: its exit status is printed third
(`<seconds> <peak_rss_kib> <status>`).
"""
import resource
import subprocess
import sys
import time

args = sys.argv[1:]
status = args[:1] == ["--status"]
if status:
    args = args[1:]
start = time.perf_counter()
proc = subprocess.run(args)
elapsed = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if status:
    print(f"{elapsed:.3f} {rss} {proc.returncode}")
    sys.exit(0)
if proc.returncode != 0:
    sys.exit(f"command failed ({proc.returncode}): {' '.join(args)}")
print(f"{elapsed:.3f} {rss}")

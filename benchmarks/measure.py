#!/usr/bin/env python3
"""Runs a command; prints its wall time in seconds and its peak RSS in KiB."""
import resource
import subprocess
import sys
import time

start = time.perf_counter()
proc = subprocess.run(sys.argv[1:])
elapsed = time.perf_counter() - start
if proc.returncode != 0:
    sys.exit(f"command failed ({proc.returncode}): {' '.join(sys.argv[1:])}")
print(f"{elapsed:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")

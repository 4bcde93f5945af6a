#!/bin/sh
echo "script: $(cat "$0.runfiles/_main/tests/testdata/data.txt")"

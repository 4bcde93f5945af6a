#!/bin/sh
# Workspace status for the stamping check.
echo "STABLE_RELEASE v1.2.3"

#!/usr/bin/env bash
# Runs one browser case with Debian's python3 (where apt puts python3-selenium), so that a
# pyenv or virtualenv python3 earlier on PATH does not hide it. Exit 77 = skipped.
py=/usr/bin/python3
[ -x "$py" ] || py="$(command -v python3)"
exec "$py" "$(dirname "$0")/viewer_test.py" "$@"

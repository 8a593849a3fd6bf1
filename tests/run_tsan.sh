#!/usr/bin/env bash
# Runs a ThreadSanitizer test binary. Some kernels place mappings where TSan cannot work
# ("unexpected memory mapping"); then the test is rerun with address-space randomisation off,
# which TSan supports. Any other failure, a race report included, fails the test.
set -u
out="$("$@" 2>&1)"; rc=$?
if [ $rc -ne 0 ] && grep -q "unexpected memory mapping" <<<"$out"; then
  echo "tsan: rerunning with ASLR disabled (setarch -R)"
  out="$(setarch "$(uname -m)" -R "$@" 2>&1)"; rc=$?
fi
printf '%s\n' "$out"
exit $rc

#!/usr/bin/env bash
# End-to-end checks of the mmphate CLI: a real run on a fixture, and one-line errors with a
# non-zero exit for bad input. Usage: cli_test.sh MMPHATE_BINARY FIXTURES_DIR
set -u
bin="$1"; fixtures="$2"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
fail=0; passed=0

expect_error() {  # expect_error NAME EXPECTED_RC PATTERN -- ARGS...
  local name="$1" rc_want="$2" pattern="$3"; shift 4
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  local lines; lines=$(grep -c '^mmphate:' "$tmp/err")
  if [ "$rc" -ne "$rc_want" ] || ! grep -q -- "$pattern" "$tmp/err" || [ "$lines" -ne 1 ]; then
    echo "FAIL $name: rc=$rc (want $rc_want), stderr:"; cat "$tmp/err"; fail=$((fail + 1))
  else
    passed=$((passed + 1))
  fi
}

# A real run: plain PHATE on the tree fixture reproduces the reference's t.
if "$bin" phate "$fixtures/tree_phate/input.npy" "$tmp/tree.npy" --quiet >"$tmp/summary.json" &&
   grep -q '"t": 25' "$tmp/summary.json" && [ -s "$tmp/tree.npy" ]; then
  passed=$((passed + 1))
else
  echo "FAIL phate run on tree fixture"; cat "$tmp/summary.json"; fail=$((fail + 1))
fi

# A multislice run writes the three outputs.
if "$bin" embed "$fixtures/synthetic_mphate/input.npy" "$tmp/emb" --quiet >/dev/null &&
   [ -s "$tmp/emb/embedding.npy" ] && [ -s "$tmp/emb/nodes.npy" ] && grep -q '"t": 58' "$tmp/emb/summary.json"; then
  passed=$((passed + 1))
else
  echo "FAIL embed run on synthetic fixture"; fail=$((fail + 1))
fi

# embed with labels writes the most active class; score reads the embedding back.
if "$bin" embed "$fixtures/lstm16_8epochs/input.npy" "$tmp/l8" --quiet --threads 2 \
     --labels "$fixtures/lstm16_8epochs/probe_labels.npy" >/dev/null &&
   [ -s "$tmp/l8/most_active_class.npy" ] && grep -q '"intra_step"' "$tmp/l8/summary.json" &&
   "$bin" score "$fixtures/lstm16_8epochs/input.npy" "$tmp/l8/embedding.npy" --nodes "$tmp/l8/nodes.npy" \
     --k 10,40 >"$tmp/score.json" && grep -q '"inter_step"' "$tmp/score.json" && grep -q '"k": *40' "$tmp/score.json"; then
  passed=$((passed + 1))
else
  echo "FAIL embed --labels / score"; fail=$((fail + 1))
fi

# --config applies a JSON preset; flags still override it.
if "$bin" phate "$fixtures/tree_phate/input.npy" "$tmp/c.npy" --quiet --config "$(dirname "$0")/../configs/phate.json" \
     --t 7 >"$tmp/c.json" && grep -q '"t": 7' "$tmp/c.json"; then
  passed=$((passed + 1)); else echo "FAIL --config"; fail=$((fail + 1)); fi
echo '{"knnn": 3}' >"$tmp/bad_config.json"

# Bad input: exactly one "mmphate: ..." error line on stderr, non-zero exit.
printf 'not a numpy file' >"$tmp/garbage.npy"
python_free_nan() {  # a 4 x 2 float64 .npy with one NaN, written byte by byte
  local f="$1"
  { printf '\x93NUMPY\x01\x00\x76\x00'
    printf "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 2), }"
    printf '%*s\n' $((118 - 60)) ''
    for v in 0 0 0 1 1 0; do printf '\x00\x00\x00\x00\x00\x00\x00\x00'; done
    printf '\x00\x00\x00\x00\x00\x00\xf8\x7f'; printf '\x00\x00\x00\x00\x00\x00\xf0\x3f'
  } >"$f"
}
python_free_nan "$tmp/nan.npy"
expect_error missing-file 1 "cannot open" -- phate "$tmp/none.npy" "$tmp/o.npy"
expect_error garbage-file 1 "not a .npy file" -- phate "$tmp/garbage.npy" "$tmp/o.npy"
expect_error wrong-dtype 1 "expected a 2-D array" -- phate "$fixtures/tree_phate/labels.npy" "$tmp/o.npy"
expect_error nan 1 "NaN" -- phate "$tmp/nan.npy" "$tmp/o.npy" --knn 2
expect_error dashed-flag 1 "allowed 'error', 'drop-node', 'zero'" -- embed "$fixtures/synthetic_mphate/input.npy" "$tmp/e" --nan-policy skip
expect_error knn-too-large 1 "knn = 5000" -- phate "$fixtures/tree_phate/input.npy" "$tmp/o.npy" --knn 5000
expect_error bad-value 1 "gamma = 3" -- phate "$fixtures/tree_phate/input.npy" "$tmp/o.npy" --gamma 3
expect_error unknown-flag 2 "unknown option --bogus" -- phate "$fixtures/tree_phate/input.npy" "$tmp/o.npy" --bogus 1
expect_error bad-enum 1 "allowed 'smacof', 'sgd'" -- phate "$fixtures/tree_phate/input.npy" "$tmp/o.npy" --mds_solver foo
expect_error unwritable 1 "cannot" -- phate "$fixtures/tree_phate/input.npy" "/nonexistent-dir/o.npy"
expect_error embed-2d 1 "expected a trace" -- embed "$fixtures/tree_phate/input.npy" "$tmp/e"
expect_error unknown-command 2 "unknown command" -- frobnicate
expect_error bad-config 1 "unknown key 'knnn'" -- phate "$fixtures/tree_phate/input.npy" "$tmp/o.npy" --config "$tmp/bad_config.json"
expect_error bad-preset 2 "invalid --preset" -- embed "$fixtures/synthetic_mphate/input.npy" "$tmp/e" --preset fast
expect_error bad-mode 1 "allowed 'faithful', 'scalable'" -- embed "$fixtures/synthetic_mphate/input.npy" "$tmp/e" --multislice_mode dense
expect_error faithful-budget 1 "memory_budget_gb" -- embed "$fixtures/synthetic_mphate/input.npy" "$tmp/e" --preset reference --memory_budget_gb 0.000001
expect_error label-count 1 "labels for" -- embed "$fixtures/synthetic_mphate/input.npy" "$tmp/e" --labels "$fixtures/lstm16_8epochs/probe_labels.npy"
expect_error score-rows 1 "rows but the trace has" -- score "$fixtures/synthetic_mphate/input.npy" "$fixtures/tree_phate/embedding_seed42.npy"

# Integers beyond the field's type are refused by name, never wrapped (knn 4294967297 ran as
# knn 1, threads 4294967298 as 2); size-like options are bounded (t_max 2^31 - 1 took 15 GB).
tree="$fixtures/tree_phate/input.npy"
expect_error knn-wraps 1 "option knn = 4294967297: allowed integers in \[1, 100000\]" -- phate "$tree" "$tmp/o.npy" --knn 4294967297
expect_error threads-wrap 1 "option threads = 4294967298: allowed integers in \[0, 1024\]" -- phate "$tree" "$tmp/o.npy" --threads 4294967298
expect_error seed-negative 1 "option seed = -1: allowed integers in \[0, 18446744073709551615\]" -- phate "$tree" "$tmp/o.npy" --seed -1
expect_error t-max-bound 1 "option t_max = 2147483647: allowed integers in \[3, 10000\]" -- phate "$tree" "$tmp/o.npy" --t_max 2147483647
echo '{"knn": 4294967301}' >"$tmp/wrap_config.json"
expect_error config-wraps 1 "key 'knn': invalid option knn = 4294967301" -- phate "$tree" "$tmp/o.npy" --config "$tmp/wrap_config.json"
expect_error max-queries-negative 1 "option --max_queries = '-5': allowed" -- score "$fixtures/synthetic_mphate/input.npy" "$tmp/emb/embedding.npy" --max_queries -5
expect_error k-wraps 1 "option --k = '4294967297': allowed" -- score "$fixtures/synthetic_mphate/input.npy" "$tmp/emb/embedding.npy" --k 4294967297
# The largest seed is accepted and printed back exactly.
if "$bin" phate "$tree" "$tmp/o.npy" --quiet --seed 18446744073709551615 --t 5 >"$tmp/seed.json" &&
   grep -q '"seed": 18446744073709551615' "$tmp/seed.json"; then
  passed=$((passed + 1)); else echo "FAIL largest seed"; cat "$tmp/seed.json"; fail=$((fail + 1)); fi

# Outputs that are no regular file: a FIFO is refused before any work and stays a FIFO; a
# symbolic link stays a link and its target receives the embedding.
mkfifo "$tmp/fifo.npy"
expect_error fifo-output 1 "refusing to write .*FIFO" -- phate "$tree" "$tmp/fifo.npy"
if [ -p "$tmp/fifo.npy" ]; then passed=$((passed + 1)); else echo "FAIL the FIFO was replaced"; fail=$((fail + 1)); fi
ln -s "$tmp/target.npy" "$tmp/link.npy"
if "$bin" phate "$tree" "$tmp/link.npy" --quiet --t 5 >/dev/null && [ -L "$tmp/link.npy" ] && [ -s "$tmp/target.npy" ]; then
  passed=$((passed + 1)); else echo "FAIL output through a symbolic link"; fail=$((fail + 1)); fi

# n_landmark larger than n is fine (landmarks are simply not needed).
if "$bin" phate "$fixtures/tree_phate/input.npy" "$tmp/o.npy" --n_landmark 5000 --quiet >/dev/null; then
  passed=$((passed + 1)); else echo "FAIL n_landmark > n"; fail=$((fail + 1)); fi

echo "cli: $passed passed, $fail failed"
[ "$fail" -eq 0 ]

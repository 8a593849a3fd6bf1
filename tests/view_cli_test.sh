#!/usr/bin/env bash
# End-to-end checks of `mmphate render`, `mmphate export --tensorboard` and `mmphate serve` on
# the recorded sample runs. Usage: view_cli_test.sh MMPHATE_BINARY TESTS_DATA_DIR
set -u
bin="$1"; data="$2"
tmp="$(mktemp -d)"; server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
fail=0; passed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
py=/usr/bin/python3; [ -x "$py" ] || py=python3

# render: one PNG per chosen frame, a contact sheet, numbered sequence frames
if "$bin" render "$data/sample_run" "$tmp/r" --frames all --contact-sheet --sequence --color class --quiet >"$tmp/out" &&
   [ "$(ls "$tmp/r"/frame_*_class.png | wc -l)" -eq 8 ] && [ -s "$tmp/r/contact_sheet_class.png" ] &&
   [ "$(ls "$tmp/r/sequence"/frame_*.png | wc -l)" -eq 8 ] &&
   [ "$(head -c 8 "$tmp/r/contact_sheet_class.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; then ok
else bad "render png / contact sheet / sequence"; cat "$tmp/out"; fi

# SVG: one circle per present node of the last frame (504 in sample_run), text escaped
if "$bin" render "$data/sample_run" "$tmp/s" --format svg --color layer --quiet >/dev/null &&
   [ "$(grep -c '<circle' "$tmp/s/frame_000009_layer.svg")" -eq 504 ] && grep -q 'lstm reverse' "$tmp/s/frame_000009_layer.svg"; then ok
else bad "render svg"; fi

# 3-D run and a truncated run render (the cut last line is skipped with a warning)
if "$bin" render "$data/sample_run_3d" "$tmp/3" --frames e:2,4 --quiet >/dev/null && [ "$(ls "$tmp/3"/*.png | wc -l)" -eq 2 ] &&
   "$bin" render "$data/sample_run_truncated" "$tmp/t" 2>"$tmp/err" >/dev/null && grep -q "incomplete last line" "$tmp/err" &&
   [ -s "$tmp/t/frame_000008_epoch.png" ]; then ok
else bad "render 3-D / truncated"; cat "$tmp/err"; fi

# export --tensorboard: rows = present nodes, metadata has a header, config lists every frame
if "$bin" export --tensorboard "$data/sample_run" "$tmp/tb" --quiet >/dev/null &&
   [ "$(grep -c '^embeddings {' "$tmp/tb/projector_config.pbtxt")" -eq 8 ] &&
   [ "$(wc -l <"$tmp/tb/frame_000009/tensors.tsv")" -eq 504 ] &&
   [ "$(wc -l <"$tmp/tb/frame_000009/metadata.tsv")" -eq 505 ] &&
   head -1 "$tmp/tb/frame_000009/metadata.tsv" | grep -q $'^epoch\ttime_step\tunit' &&
   grep -q 'tensor_path: "frame_000009/tensors.tsv"' "$tmp/tb/projector_config.pbtxt"; then ok
else bad "export --tensorboard"; fi

# export --tensorboard also writes the run's curves as one TensorBoard event file next to the
# projector files (its bytes are checked by test_tfevents). Where python3 has TensorBoard, its
# own loader reads them back (optional: TensorBoard is not a Debian package nor in setup.sh).
ev=("$tmp/tb"/events.out.tfevents.*.mmphate)
if [ "${#ev[@]}" -eq 1 ] && [ -s "${ev[0]}" ]; then ok; else bad "export writes one event file"; fi
if "$py" -c 'import tensorboard' 2>/dev/null; then
  if "$py" - "$tmp/tb" <<'PY'
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
tags = set(acc.Tags()["scalars"])
need = {"metrics/train_loss", "metrics/val_acc", "diagnostics/intra_step_entropy", "phase/code", "progress/global_step"}
loss = acc.Scalars("metrics/train_loss")
ok = need <= tags and [s.step for s in loss] == list(range(8)) and abs(loss[0].value - 2.4) < 1e-6 and \
     loss[0].wall_time == 1700000003.0 and [s.step for s in acc.Scalars("metrics/val_acc")] == [0, 2, 3, 4, 5, 6, 7]
if not ok:
    print("TensorBoard tags:", sorted(tags))
sys.exit(0 if ok else 1)
PY
  then ok; else bad "TensorBoard's EventAccumulator reads the exported scalars"; fi
else
  echo "note: python3 has no tensorboard package; TensorBoard's own reading of the event file is not checked"
fi

# OUT_DIR's missing parents are created, like mkdir -p (both used to fail on a fresh nested
# path); a parent that is a file is an error naming it.
if "$bin" render "$data/sample_run" "$tmp/new/a/b//r/" --quiet >/dev/null && [ -s "$tmp/new/a/b/r/frame_000009_epoch.png" ] &&
   "$bin" export --tensorboard "$data/sample_run" "$tmp/new/c/d/tb" --frames last --quiet >/dev/null &&
   [ -s "$tmp/new/c/d/tb/projector_config.pbtxt" ] && [ -s "$tmp/new/c/d/tb/frame_000009/tensors.tsv" ]; then ok
else bad "render / export create missing parents of OUT_DIR"; fi
: >"$tmp/plainfile"
expect_parent() {  # expect_parent NAME ARGS...: exit 1, one error line naming the file in the way
  local name="$1"; shift
  "$bin" "$@" --quiet >/dev/null 2>"$tmp/err"; local rc=$?
  if [ "$rc" -eq 1 ] && grep -q "^mmphate: error: cannot create directory '$tmp/plainfile': exists and is not a directory" "$tmp/err" &&
     [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok; else bad "$name: rc=$rc"; cat "$tmp/err"; fi
}
expect_parent render-parent-is-file render "$data/sample_run" "$tmp/plainfile/sub/r"
expect_parent export-parent-is-file export --tensorboard "$data/sample_run" "$tmp/plainfile/sub/tb"

# A sidecar that is a symbolic link out of the run (or a linked frames/ folder) is never read:
# that frame is skipped with a warning, the others are rendered / exported.
mkdir -p "$tmp/outside"; cp -r "$data/sample_run" "$tmp/linked"
cp "$tmp/linked/frames/frame_000009.f32" "$tmp/outside/secret.f32"
ln -sf "$tmp/outside/secret.f32" "$tmp/linked/frames/frame_000009.f32"
if "$bin" render "$tmp/linked" "$tmp/lr" --frames all --quiet >"$tmp/out" 2>"$tmp/err" &&
   [ "$(ls "$tmp/lr"/frame_*.png | wc -l)" -eq 7 ] && [ ! -e "$tmp/lr/frame_000009_epoch.png" ] &&
   grep -q "frame 9 coords_file 'frames/frame_000009.f32': resolves to .*outside the run directory" "$tmp/err" &&
   "$bin" export --tensorboard "$tmp/linked" "$tmp/ltb" --quiet >/dev/null 2>"$tmp/err2" &&
   [ ! -e "$tmp/ltb/frame_000009" ] && [ "$(grep -c '^embeddings {' "$tmp/ltb/projector_config.pbtxt")" -eq 7 ] &&
   grep -q "outside the run directory" "$tmp/err2"; then ok
else bad "sidecar link out of the run"; cat "$tmp/err" "$tmp/err2" 2>/dev/null; fi
cp -r "$data/sample_run" "$tmp/linkdir"; mv "$tmp/linkdir/frames" "$tmp/outside/frames"
ln -s "$tmp/outside/frames" "$tmp/linkdir/frames"
if "$bin" render "$tmp/linkdir" "$tmp/ldr" --frames last --quiet >/dev/null 2>"$tmp/err"; then
  bad "linked frames/ folder rendered"; else
  if grep -q "outside the run directory" "$tmp/err" && grep -q "^mmphate: error: nothing rendered" "$tmp/err" &&
     [ ! -e "$tmp/ldr/frame_000009_epoch.png" ]; then ok; else bad "linked frames/ folder"; cat "$tmp/err"; fi; fi

# Bad sidecars (missing, truncated) cost their frame only: one warning each naming the frame
# and the reason, the other frames rendered, a closing count, exit 0; exit 1 when none renders.
cp -r "$data/sample_run" "$tmp/badside"; rm "$tmp/badside/frames/frame_000008.f32"
head -c 100 "$data/sample_run/frames/frame_000009.f32" >"$tmp/badside/frames/frame_000009.f32"
if "$bin" render "$tmp/badside" "$tmp/br" --frames all --contact-sheet --sequence --quiet >"$tmp/out" 2>"$tmp/err" &&
   [ "$(ls "$tmp/br"/frame_*_epoch.png | wc -l)" -eq 6 ] && [ -s "$tmp/br/contact_sheet_epoch.png" ] &&
   [ "$(ls "$tmp/br/sequence"/frame_*.png | wc -l)" -eq 6 ] && [ -s "$tmp/br/sequence/frame_0005.png" ] &&
   [ "$(grep -c "skipping epoch 6: frame 8 coords_file 'frames/frame_000008.f32': cannot read (No such file" "$tmp/err")" -eq 1 ] &&
   [ "$(grep -c "skipping epoch 7: frame 9 .*: 100 bytes, expected 4096" "$tmp/err")" -eq 1 ] &&
   grep -q "2 frame(s) skipped" "$tmp/err" && ! grep -q "^mmphate:" "$tmp/err"; then ok
else bad "render skips bad sidecars"; cat "$tmp/err"; fi
expect_rc() {  # expect_rc NAME RC PATTERN -- ARGS: exit status and a pattern on stderr
  local name="$1" want="$2" pat="$3"; shift 4
  "$bin" "$@" >/dev/null 2>"$tmp/err"; local rc=$?
  if [ "$rc" -eq "$want" ] && grep -q -- "$pat" "$tmp/err"; then ok; else bad "$name: rc=$rc"; cat "$tmp/err"; fi
}
expect_rc render-all-bad 1 "^mmphate: error: nothing rendered: no chosen frame has readable coordinates (2 skipped" -- \
  render "$tmp/badside" "$tmp/bn" --frames 8,9 --quiet
expect_rc export-all-bad 1 "^mmphate: error: nothing exported" -- export --tensorboard "$tmp/badside" "$tmp/bx" --frames e:6,7
expect_rc export-skips 0 "2 frame(s) skipped (unreadable coordinates, see above); 6 exported" -- \
  export --tensorboard "$tmp/badside" "$tmp/bx2"

# A write that hits the file-size limit (like a full disk) leaves no OUT.tmp behind and ends
# in one error line (the kernel's SIGXFSZ used to kill the command mid-write).
size_limited() {  # size_limited NAME OUT_DIR ARGS...: mmphate ARGS under a small file-size limit
  local name="$1" out_dir="$2"; shift 2
  bash -c 'ulimit -f 8; exec "$0" "$@" --quiet' "$bin" "$@" >/dev/null 2>"$tmp/err"; local rc=$?
  if [ "$rc" -eq 1 ] && [ "$(grep -c '^mmphate: error: failed writing' "$tmp/err")" -eq 1 ] &&
     [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ -d "$out_dir" ] && [ -z "$(find "$out_dir" -name '*.tmp')" ]; then ok
  else bad "file-size limit, $name: rc=$rc"; cat "$tmp/err"; find "$out_dir" -name '*.tmp'; fi
}
size_limited render-png "$tmp/full_r" render "$data/sample_run" "$tmp/full_r"
size_limited render-svg "$tmp/full_s" render "$data/sample_run" "$tmp/full_s" --format svg
size_limited export "$tmp/full_x" export --tensorboard "$data/sample_run" "$tmp/full_x"

# metadata.tsv cells from hostile layer names: still 8 columns per row, no raw markup or
# control characters, visible escapes instead.
cp -r "$data/sample_run" "$tmp/hostile"
"$py" - "$tmp/hostile/node_index.json" <<'PY'
import json, sys
p = sys.argv[1]; j = json.load(open(p))
names = ["a\tb", "line\nbreak\r", "<script>alert(1)</script>", "x & y", "bell\x07", "back\\slash"]
for i, m in enumerate(j["units_meta"]): m["layer"] = names[i % len(names)]
json.dump(j, open(p, "w"))
PY
if "$bin" export --tensorboard "$tmp/hostile" "$tmp/htb" --frames last --quiet >/dev/null &&
   m="$tmp/htb/frame_000009/metadata.tsv" && [ "$(wc -l <"$m")" -eq 505 ] &&
   [ "$(awk -F'\t' 'NF != 8' "$m" | wc -l)" -eq 0 ] && ! grep -q '<' "$m" && ! grep -q $'\x07\|\r' "$m" &&
   grep -qF '&lt;script&gt;alert(1)&lt;/script&gt;' "$m" && grep -qF 'x &amp; y' "$m" && grep -qF 'a\tb' "$m" &&
   grep -qF 'line\nbreak\r' "$m" && grep -qF 'bell\x07' "$m" && grep -qF 'back\\slash' "$m"; then ok
else bad "export metadata.tsv escaping"; head -3 "$tmp/htb/frame_000009/metadata.tsv" 2>/dev/null | cat -A; fi

# bad input: one-line errors, exit 1 for data errors, 2 for usage errors
expect() {  # expect NAME RC PATTERN -- ARGS
  local name="$1" want="$2" pat="$3"; shift 4
  "$bin" "$@" >/dev/null 2>"$tmp/err"; local rc=$?
  if [ "$rc" -eq "$want" ] && grep -q -- "$pat" "$tmp/err" && [ "$(grep -c '^mmphate:' "$tmp/err")" -eq 1 ]; then ok
  else bad "$name: rc=$rc"; cat "$tmp/err"; fi
}
expect render-missing 1 "not found" -- render "$tmp/nope" "$tmp/x"
expect render-color 1 "invalid --color" -- render "$data/sample_run" "$tmp/x" --color rainbow
expect render-frame 1 "no embedding frame with epoch 42" -- render "$data/sample_run" "$tmp/x" --frames e:42
expect render-usage 2 "needs RUN_DIR" -- render "$data/sample_run"
expect export-format 2 "needs a format" -- export "$data/sample_run" "$tmp/x"
expect serve-missing 1 "not found" -- serve "$tmp/nope" --port 0
expect serve-max-connections 2 "invalid --max-connections" -- serve "$data/sample_run" --port 0 --max-connections 0
expect serve-head-timeout 2 "invalid --head-timeout" -- serve "$data/sample_run" --port 0 --head-timeout -1

# serve: loopback, read-only, only the run and viewer directories
"$bin" serve "$data/sample_run" --port 0 --quiet >"$tmp/url" & server=$!
for _ in $(seq 50); do [ -s "$tmp/url" ] && break; sleep 0.1; done
if "$py" - "$(cat "$tmp/url")" <<'PY'
import http.client, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
def req(method, path, headers=None):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    h = {"Host": u.netloc}; h.update(headers or {})
    for k, v in h.items(): c.putheader(k, v)
    c.endheaders(); r = c.getresponse(); body = r.read(); c.close()
    return r.status, body, r
checks = [
    (req("GET", "/")[0] == 302, "root redirects to the viewer"),
    (req("GET", "/viewer/index.html")[0] == 200, "viewer page"),
    (req("GET", "/run/frames.jsonl")[0] == 200, "frames"),
    (req("GET", "/run/frames/frame_000009.f32")[0] == 200, "sidecar"),
    (req("GET", "/run/../sample_run_3d/frames.jsonl")[0] == 404, "dot-dot refused"),
    (req("GET", "/run/%2e%2e/sample_run_3d/frames.jsonl")[0] == 404, "encoded dot-dot refused"),
    (req("GET", "/run/..%2f..%2fCMakeLists.txt")[0] == 404, "encoded slash traversal refused"),
    (req("GET", "/viewer/../../CMakeLists.txt")[0] == 404, "viewer traversal refused"),
    (req("GET", "/etc/passwd")[0] == 404, "other paths refused"),
    (req("GET", "/run/")[0] == 404, "no directory listing"),
    (req("POST", "/run/frames.jsonl")[0] == 405, "read-only"),
    (req("PUT", "/run/x")[0] == 405, "read-only (PUT)"),
    (req("GET", "/run/frames.jsonl", {"Host": "evil.example:80"})[0] == 403, "foreign Host refused"),
]
s, body, r = req("GET", "/run/frames.jsonl", {"Range": "bytes=2-11"})
checks.append((s == 206 and body == b'schema_ver' and r.getheader("Content-Range", "").startswith("bytes 2-11/"), "range request"))
bad = [m for ok, m in checks if not ok]
print("\n".join("FAIL serve: " + m for m in bad))
sys.exit(1 if bad else 0)
PY
then ok; else bad "serve"; fi
if ss -ltn 2>/dev/null | grep -q ":$(sed -E 's|.*:([0-9]+)/|\1|' "$tmp/url") " && ss -ltn | grep ":$(sed -E 's|.*:([0-9]+)/|\1|' "$tmp/url") " | grep -qv '127.0.0.1'; then
  bad "serve listens beyond loopback"; else ok; fi

echo "view commands: $passed passed, $fail failed"
[ "$fail" -eq 0 ]

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

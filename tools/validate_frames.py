#!/usr/bin/env python3
"""Validates a run directory's frames.jsonl (and node_index.json) against docs/frame.schema.json.

Usage: validate_frames.py RUN_DIR [--schema PATH] [--min-frames N] [--require-event NAME ...]
Checks every complete line (a last line without its newline is a frame still being written
and is skipped), that sidecar files exist with the declared size, that frame numbers increase,
and that every embedding frame's node arrays match the node index. Exit status 0 = valid.
Needs Debian's python3-jsonschema.
"""
import argparse
import json
import os
import sys

import jsonschema


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--schema", default=os.path.join(here, "..", "docs", "frame.schema.json"))
    ap.add_argument("--min-frames", type=int, default=1, help="embedding frames required")
    ap.add_argument("--require-event", action="append", default=[])
    args = ap.parse_args()

    with open(args.schema) as f:
        schema = json.load(f)
    validator = jsonschema.Draft202012Validator(schema)
    with open(os.path.join(args.run_dir, "frames.jsonl"), "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] != b"":
        print("note: skipping an unfinished last line", file=sys.stderr)
    lines = [l for l in lines[:-1] if l.strip()]
    node_index = None
    ni_path = os.path.join(args.run_dir, "node_index.json")
    if os.path.exists(ni_path):
        with open(ni_path) as f:
            node_index = json.load(f)

    errors = 0
    embedding = 0
    events = set()
    last_frame = -1
    for no, raw in enumerate(lines, 1):
        try:
            frame = json.loads(raw)
        except json.JSONDecodeError as e:
            print(f"line {no}: not JSON: {e}")
            errors += 1
            continue
        for err in validator.iter_errors(frame):
            print(f"line {no}: {'/'.join(map(str, err.path))}: {err.message[:300]}")
            errors += 1
        if frame.get("frame", -1) <= last_frame:
            print(f"line {no}: frame number {frame.get('frame')} does not increase")
            errors += 1
        last_frame = frame.get("frame", last_frame)
        if frame.get("type") == "event":
            events.add(frame.get("event"))
            continue
        embedding += 1
        n, d = frame["n_nodes"], frame["n_components"]
        w = frame["window"]
        if n != len(w["epochs"]) * w["steps"] * w["units"]:
            print(f"line {no}: n_nodes {n} != epochs x steps x units")
            errors += 1
        if "coords" in frame and len(frame["coords"]) != n * d:
            print(f"line {no}: {len(frame['coords'])} coordinates for {n} nodes x {d}")
            errors += 1
        if "coords_file" in frame:
            path = os.path.join(args.run_dir, frame["coords_file"]["path"])
            if not os.path.exists(path) or os.path.getsize(path) != 4 * n * d:
                print(f"line {no}: sidecar {path} missing or not {4 * n * d} bytes")
                errors += 1
        if len(frame.get("most_active_class", [])) not in (0, n):
            print(f"line {no}: most_active_class has {len(frame['most_active_class'])} entries for {n} nodes")
            errors += 1
        if node_index is not None and (w["steps"] != node_index["steps"] or w["units"] != node_index["units"]):
            print(f"line {no}: window layout differs from node_index.json")
            errors += 1
    if embedding < args.min_frames:
        print(f"{embedding} embedding frame(s), expected at least {args.min_frames}")
        errors += 1
    for e in args.require_event:
        if e not in events:
            print(f"no '{e}' event frame")
            errors += 1
    if node_index is None and embedding > 0:
        print("node_index.json is missing")
        errors += 1
    print(f"{args.run_dir}: {len(lines)} line(s), {embedding} embedding frame(s), events {sorted(events)}, "
          f"{errors} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

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


def check_embedding(frame, no, run_dir, node_index):
    """Structural checks of one schema-valid embedding frame; returns the error count."""
    errors = 0
    n, d = frame["n_nodes"], frame["n_components"]
    w = frame["window"]
    if n != len(w["epochs"]) * w["steps"] * w["units"]:
        print(f"line {no}: n_nodes {n} != epochs x steps x units")
        errors += 1
    if "coords" in frame and len(frame["coords"]) != n * d:
        print(f"line {no}: {len(frame['coords'])} coordinates for {n} nodes x {d}")
        errors += 1
    if "coords_file" in frame:
        path = os.path.join(run_dir, frame["coords_file"]["path"])
        if not os.path.exists(path) or os.path.getsize(path) != 4 * n * d:
            print(f"line {no}: sidecar {path} missing or not {4 * n * d} bytes")
            errors += 1
    if len(frame.get("most_active_class", [])) not in (0, n):
        print(f"line {no}: most_active_class has {len(frame['most_active_class'])} entries for {n} nodes")
        errors += 1
    if node_index is not None and (w["steps"] != node_index["steps"] or w["units"] != node_index["units"]):
        print(f"line {no}: window layout differs from node_index.json")
        errors += 1
    return errors


def reject_constant(name):
    # Python accepts NaN / Infinity literals; JSON (and every other reader) does not.
    raise ValueError(f"{name} literal (JSON has no NaN or Infinity; write null)")


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
    try:
        with open(os.path.join(args.run_dir, "frames.jsonl"), "rb") as f:
            data = f.read()
    except OSError as e:
        print(f"{args.run_dir}: cannot read frames.jsonl: {e}")
        return 1
    lines = data.split(b"\n")
    if lines and lines[-1] != b"":
        print("note: skipping an unfinished last line", file=sys.stderr)
    lines = [l for l in lines[:-1] if l.strip()]
    node_index = None
    ni_path = os.path.join(args.run_dir, "node_index.json")
    if os.path.exists(ni_path):
        try:
            with open(ni_path) as f:
                node_index = json.load(f, parse_constant=reject_constant)
        except (OSError, ValueError) as e:
            print(f"node_index.json: not readable JSON: {e}")
            return 1

    errors = 0
    embedding = 0
    events = set()
    last_frame = -1
    for no, raw in enumerate(lines, 1):
        try:
            frame = json.loads(raw, parse_constant=reject_constant)
        except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
            print(f"line {no}: not JSON: {e}")
            errors += 1
            continue
        if not isinstance(frame, dict):
            print(f"line {no}: expected a JSON object, got {type(frame).__name__}")
            errors += 1
            continue
        schema_errors = 0
        for err in validator.iter_errors(frame):
            print(f"line {no}: {'/'.join(map(str, err.path))}: {err.message[:300]}")
            schema_errors += 1
        errors += schema_errors
        number = frame.get("frame")
        if not isinstance(number, int) or isinstance(number, bool):
            if schema_errors == 0:
                print(f"line {no}: frame number {number!r} is not an integer")
                errors += 1
            continue
        if number <= last_frame:
            print(f"line {no}: frame number {number} does not increase")
            errors += 1
        last_frame = number
        if frame.get("type") == "event":
            events.add(frame.get("event"))
            continue
        embedding += 1
        if schema_errors:
            continue  # the checks below assume the schema's required keys and types
        try:
            errors += check_embedding(frame, no, args.run_dir, node_index)
        except (KeyError, TypeError, ValueError) as e:
            print(f"line {no}: malformed embedding frame: {type(e).__name__}: {e}")
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

#!/usr/bin/env python3
"""Writes small recorded runs in the docs/FRAMES.md format, for the reader, render/export and
viewer tests (the live Monitor will replace this as the source of real runs).

usage: make_sample_run.py OUT_DIR [--dims 2|3] [--epochs N] [--steps N] [--units N]
                          [--window N] [--sidecar-above N] [--truncate] [--seed N]

Deterministic: the same arguments give byte-identical files. Node layout: a bidirectional
layer (half the units per direction); units drift between a few class communities over epochs.
"""
import argparse
import json
import math
import os
import random
import struct


def node_coords(rng, e, s, u, args, centers):
    # A unit sits near its class centre; it tightens over epochs and spreads along the steps.
    cx = centers[u]
    tight = 1.0 / (1.0 + 0.35 * e)
    pos = [cx[k] * (0.6 + 0.08 * e) for k in range(args.dims)]
    pos[0] += 0.12 * (s - args.steps / 2) * tight
    pos[1] += 0.05 * math.sin(s + u) * tight
    return [p + rng.gauss(0.0, 0.08 * tight) for p in pos]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dims", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--units", type=int, default=16)
    ap.add_argument("--window", type=int, default=4)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--sidecar-above", type=int, default=-1,
                    help="epochs >= this value get a coords_file sidecar (-1: never)")
    ap.add_argument("--truncate", action="store_true", help="cut the last line in half (no newline)")
    ap.add_argument("--decimals", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    run_id = "sample-%dd-%d" % (args.dims, args.seed)
    os.makedirs(os.path.join(args.out, "frames"), exist_ok=True)
    half = max(1, args.units // 2)
    step_index = [round(i * 27 / max(1, args.steps - 1)) for i in range(args.steps)]
    units_meta = [{"layer": "lstm", "direction": 0 if u < half else 1, "unit": u % half}
                  for u in range(args.units)]
    probes = 20
    node_index = {
        "schema_version": 1, "steps": args.steps, "step_index": step_index, "units": args.units,
        "units_meta": units_meta, "probes": probes,
        "probe_labels": [p % args.classes for p in range(probes)], "classes": args.classes,
        "node_order": "epoch = window.epochs[i / (steps * units)]; "
                      "step = step_index[(i / units) % steps]; unit = i % units",
    }
    with open(os.path.join(args.out, "node_index.json"), "w") as f:
        json.dump(node_index, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump({"run": {"name": run_id}, "n_components": args.dims,
                   "window": {"epochs": args.window}, "generator": "tests/data/make_sample_run.py"},
                  f, indent=2)
        f.write("\n")

    # Class communities on a circle (a sphere shell in 3-D).
    n_comm = 4
    comm = [(math.cos(2 * math.pi * c / n_comm), math.sin(2 * math.pi * c / n_comm),
             0.5 * (-1) ** c) for c in range(n_comm)]
    unit_class = [rng.randrange(args.classes) for _ in range(args.units)]
    centers = [comm[unit_class[u] % n_comm] for u in range(args.units)]

    lines = []
    frame = 0
    t0 = 1700000000.0

    def base(kind, epoch, gstep):
        nonlocal frame
        d = {"schema_version": 1, "type": kind, "run_id": run_id, "frame": frame, "epoch": epoch,
             "global_step": gstep, "wall_time": round(t0 + 3.0 * frame, 3), "elapsed_s": round(3.0 * frame, 3)}
        frame += 1
        return d

    def event(name, epoch, msg, data=None):
        d = base("event", epoch, max(0, epoch) * 100)
        d["event"] = name
        d["message"] = msg
        if data is not None:
            d["data"] = data
        lines.append(d)

    event("started", -1, "monitor started")
    phase_epoch = args.epochs // 3
    stop_epoch = args.epochs - 1
    for e in range(args.epochs):
        win = list(range(max(0, e - args.window + 1), e + 1))
        n = len(win) * args.steps * args.units
        coords, mac = [], []
        for we in win:
            for si in range(args.steps):
                for u in range(args.units):
                    # Two padded nodes per epoch: absent (null) from the graph.
                    absent = si == args.steps - 1 and u in (3, 11)
                    c = node_coords(rng, we, si, u, args, centers)
                    coords.extend([None] * args.dims if absent else c)
                    mac.append(-1 if absent else (unit_class[u] if rng.random() < 0.8 else rng.randrange(args.classes)))
        d = base("embedding", e, (e + 1) * 100)
        present = n - 2 * len(win)
        train_loss = 2.3 * math.exp(-0.35 * e) + 0.1
        val_loss = train_loss + 0.02 * e * e / max(1, args.epochs)
        d.update({
            "n_nodes": n, "n_present": present, "n_components": args.dims,
            "window": {"epochs": win, "steps": args.steps, "units": args.units},
        })
        if args.sidecar_above >= 0 and e >= args.sidecar_above:
            rel = "frames/frame_%06d.f32" % d["frame"]
            with open(os.path.join(args.out, rel), "wb") as f:
                f.write(struct.pack("<%df" % len(coords), *[math.nan if v is None else v for v in coords]))
            d["coords_file"] = {"path": rel, "dtype": "<f4", "shape": [n, args.dims]}
        else:
            d["coords"] = [None if v is None else round(v, args.decimals) for v in coords]
        d.update({
            "most_active_class": mac, "t": 12 + e % 3, "t_automatic": True,
            "update": "full" if e == 0 or e % 4 == 0 else "incremental",
            "update_reason": "first frame" if e == 0 else "schedule",
            "coalesced_epochs": [], "latency_s": 0.25,
            "timings_s": {"kernel": 0.05, "landmarks": 0.02, "mds": 0.1},
            "alignment": {"method": "none" if e == 0 else "procrustes",
                          "shared_nodes": 0 if e == 0 else (len(win) - 1) * args.steps * args.units,
                          "rms_displacement": None if e == 0 else round(0.05 + 0.01 * e, 4),
                          "reflected": False},
            "landmarks": 0, "interslice_eps": 0.8,
            "metrics": {"train_loss": round(train_loss, 4), "val_loss": round(val_loss, 4),
                        "train_acc": round(1 - train_loss / 2.6, 4),
                        "val_acc": None if e == 1 else round(0.97 - val_loss / 2.6, 4)},
            # Shaped like the Monitor's diagnostics (docs/DIAGNOSTICS.md): per-epoch arrays
            # over the window, the newest epoch's quantities, bookkeeping the viewer ignores.
            "diagnostics": {
                "estimator": "knn", "epochs": win, "present_nodes": present, "frame_radius": 1.0,
                "per_epoch": {
                    "intra_step_entropy": [round(2.0 + 0.6 * math.sin(we / 2.0), 4) for we in win],
                    "inter_step_entropy": [round(1.5 + 0.1 * we, 4) for we in win],
                    "visualization_variance": [round(1.0 / (1 + 0.3 * we), 4) for we in win],
                },
                "visualization_variance_total": round(sum(1.0 / (1 + 0.3 * we) for we in win), 4),
                "newest": {"epoch": e, "intra_step_entropy_by_step": [1.0] * args.steps},
                "quantities": {"intra_step_entropy": round(2.0 + 0.6 * math.sin(e / 2.0), 4),
                               "inter_step_entropy": round(1.5 + 0.1 * e, 4),
                               "visualization_variance": round(1.0 / (1 + 0.3 * e), 4)},
                # The PhaseDetector's vocabulary (phase_detector.cpp, docs/frame.schema.json).
                "phase": {"quantity": "intra_step_entropy",
                          "trend": "information_processing" if e < phase_epoch else "compression",
                          "label": "compression" if e >= phase_epoch else "information_processing",
                          "evidence": None},
                "warnings": [], "seconds": 0.01, "timings_s": {"entropy": 0.004},
            },
        })
        lines.append(d)
        if e == phase_epoch:
            event("phase_change", e, "phase: information_processing -> compression (intra_step_entropy)",
                  {"from": "information_processing", "to": "compression"})
        if e == stop_epoch and not args.truncate:
            event("early_stop", e, "validation loss did not improve for 3 epochs", {"patience": 3})
    if not args.truncate:  # a killed run: the last embedding frame is cut, no closing events
        event("finished", args.epochs - 1, "training finished")

    text = "".join(json.dumps(d, separators=(",", ":")) + "\n" for d in lines)
    if args.truncate:
        # A killed writer: the last line stops half way, without its newline.
        last = len(text) - len(json.dumps(lines[-1], separators=(",", ":"))) - 1
        text = text[:last] + text[last:-1][: (len(text) - 1 - last) // 2]
    with open(os.path.join(args.out, "frames.jsonl"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Phase labels of replayed real runs, as markdown (docs/DIAGNOSTICS.md, "real runs").

usage: phase_report.py [--table] OUT_DIR [RUN ...]
OUT_DIR: the --out folder of `bench_live` (one run folder per run, each with frames.jsonl).
Per run: the phase detector's curve (the quantity it labels, from the last frame's
per-epoch table), each epoch's final label (taken from the first frame in which it was final,
and checked against every later frame), and the validation metrics the run logged.
"""
import json
import os
import sys


def frames_of(path):
    out = []
    with open(path) as f:
        for line in f:
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if isinstance(j.get("diagnostics"), dict) and "phase" in j["diagnostics"]:
                out.append(j)
    return out


def report(run_dir, name, table):
    frames = frames_of(os.path.join(run_dir, "frames.jsonl"))
    if not frames:
        return f"### `{name}`\n\nno frame with phase labels\n"
    final, changed = {}, 0
    metrics = {}
    for fr in frames:
        d = fr["diagnostics"]
        ph = d["phase"]
        if "metrics" in fr:
            metrics[fr["epoch"]] = fr["metrics"]
        fin = ph.get("final_epoch")
        for e, lab in zip(d["epochs"], ph.get("per_epoch", [])):
            if fin is None or e > fin:
                continue
            if e in final and final[e] != lab:
                changed += 1
            final.setdefault(e, lab)
    last = frames[-1]["diagnostics"]
    quantity = last["phase"].get("quantity", "intra_step_entropy")
    curve = last["per_epoch"].get(quantity, [])
    provisional = last["phase"].get("per_epoch", [])
    rows = ["| epoch | " + quantity + " | label | val_accuracy |", "|---|---|---|---|"]
    for i, e in enumerate(last["epochs"]):
        lab = final.get(e)
        shown = lab if lab is not None else f"({provisional[i] if i < len(provisional) else '?'}, provisional)"
        acc = metrics.get(e, {}).get("val_accuracy")
        v = curve[i] if i < len(curve) else None
        rows.append(f"| {e} | {'' if v is None else f'{v:.3f}'} | {shown} | {'' if acc is None else f'{acc:.3f}'} |")
    runs = []
    prev = None
    for e in last["epochs"]:
        lab = final.get(e)
        if lab is None:
            continue
        if prev and prev[0] == lab:
            prev[2] = e
        else:
            prev = [lab, e, e]
            runs.append(prev)
    summary = ", ".join(f"{a}-{b} {lab}" if a != b else f"{a} {lab}" for lab, a, b in runs)
    head = (f"### `{name}`\n\n{len(frames)} frames; final labels: {summary or 'none yet'}; "
            f"final labels changed later: {changed}\n\n")
    if table:
        return head + "\n".join(rows) + "\n"
    accs = [metrics.get(e, {}).get("val_accuracy") for e in last["epochs"]]
    return (head + f"* {quantity} per epoch (last frame): " + " ".join(f"{v:.2f}" for v in curve) + "\n"
            + ("* val_accuracy: " + " ".join(f"{a:.2f}" for a in accs if a is not None) + "\n" if any(a is not None for a in accs) else ""))


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    args = sys.argv[1:]
    table = "--table" in args
    args = [a for a in args if a != "--table"]
    root = args[0]
    names = args[1:] or sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, "frames.jsonl")))
    print("\n".join(report(os.path.join(root, n), n, table) for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())

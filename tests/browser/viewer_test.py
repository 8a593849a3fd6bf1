#!/usr/bin/env python3
"""End-to-end tests of the web viewer in headless Chromium (Debian's chromium + chromium-driver,
driven through python3-selenium). Each case loads a recorded run the way a person would (through
`mmphate serve`, or the file picker of a file:// page) and asserts on what is on screen.
Screenshots go to --shots (kept as CI artifacts).

usage: viewer_test.py --mmphate BIN --viewer DIR --data DIR --shots DIR --work DIR CASE
Exit 0 = pass, 1 = fail, 77 = skipped (Chromium is not installed).
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time

SKIP = 77
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def present_counts(run_dir):
    """Present nodes per embedding frame, computed from the files (independently of the viewer)."""
    counts = []
    with open(os.path.join(run_dir, "frames.jsonl")) as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if d.get("type") != "embedding":
                continue
            dims = d["n_components"]
            if "coords" in d:
                c = d["coords"]
            else:
                raw = open(os.path.join(run_dir, d["coords_file"]["path"]), "rb").read()
                c = struct.unpack("<%df" % (len(raw) // 4), raw)
            n = 0
            for i in range(d["n_nodes"]):
                v = c[i * dims:(i + 1) * dims]
                n += all(x is not None and math.isfinite(x) for x in v)
            counts.append((d["epoch"], n))
    return counts


class Viewer:
    def __init__(self, args):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1400,1000", "--force-device-scale-factor=1", "--allow-file-access-from-files"):
            opts.add_argument(a)
        self.d = webdriver.Chrome(service=Service(DRIVER), options=opts)
        self.d.set_page_load_timeout(30)
        self.args = args
        self.server = None

    def serve(self, run_dir):
        self.server = subprocess.Popen([self.args.mmphate, "serve", run_dir, "--port", "0", "--quiet",
                                        "--viewer", self.args.viewer], stdout=subprocess.PIPE, text=True)
        url = self.server.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise AssertionError("mmphate serve printed no address: %r" % url)
        return url

    def close(self):
        try:
            self.d.quit()
        finally:
            if self.server:
                self.server.terminate()
                self.server.wait(10)

    def js(self, script, *a):
        return self.d.execute_script(script, *a)

    def text(self, elem_id):
        return self.d.find_element("id", elem_id).text

    def wait(self, cond, what, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            try:
                v = cond()
                if v:
                    return v
            except Exception:  # the page may still be loading
                pass
            time.sleep(0.1)
        raise AssertionError("timed out waiting for " + what)

    def drawn(self):
        t = self.text("drawn-count")
        return int(t.split()[0].replace(",", "")) if t else -1

    def wait_drawn(self, n=None):
        self.wait(lambda: self.drawn() > 0 and (n is None or self.drawn() == n),
                  "%s points drawn (now: %r)" % (n, self.text("drawn-count")))
        time.sleep(0.4)  # let a running tween finish

    def canvas_hash(self):
        url = self.js("return document.getElementById('scatter').toDataURL('image/png');")
        return hashlib.sha1(url.encode()).hexdigest()

    def shot(self, name):
        os.makedirs(self.args.shots, exist_ok=True)
        self.d.save_screenshot(os.path.join(self.args.shots, name + ".png"))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ---- cases ---------------------------------------------------------------------------------

def case_points_drawn(v, a):
    run = os.path.join(a.data, "sample_run")
    want = present_counts(run)
    v.d.get(v.serve(run) + "viewer/index.html?run=/run/")
    v.wait_drawn(want[-1][1])
    check("epoch %d" % want[-1][0] in v.text("frame-label"), "frame label shows the last epoch: " + v.text("frame-label"))
    check(v.text("notices") == "", "no notices for a complete run: " + v.text("notices"))
    # the curve panel is drawn with the metric names
    check(v.js("return document.getElementById('curves').height") > 100, "curves canvas has plots")
    v.shot("points_drawn")


def case_color_modes(v, a):
    run = os.path.join(a.data, "sample_run")
    v.d.get(v.serve(run) + "viewer/index.html?run=/run/")
    v.wait_drawn()
    from selenium.webdriver.support.ui import Select
    hashes, legends = {}, {}
    for mode in ("epoch", "step", "unit", "layer", "class"):
        Select(v.d.find_element("id", "color-mode")).select_by_value(mode)
        time.sleep(0.3)
        hashes[mode] = v.canvas_hash()
        legends[mode] = v.text("legend")
        v.shot("color_" + mode)
    check(len(set(hashes.values())) == 5, "every colour mode gives different colours: %s" % hashes)
    check("most active class" in legends["class"] and "class 0" in legends["class"], "class legend: " + legends["class"])
    check("lstm forward" in legends["layer"] and "lstm reverse" in legends["layer"], "layer legend: " + legends["layer"])
    check(v.drawn() > 0, "points drawn")


def case_scrub(v, a):
    from selenium.webdriver.common.keys import Keys
    run = os.path.join(a.data, "sample_run")
    want = present_counts(run)
    v.d.get(v.serve(run) + "viewer/index.html?run=/run/")
    v.wait_drawn(want[-1][1])
    before = v.canvas_hash()
    scrub = v.d.find_element("id", "scrubber")
    scrub.click()
    scrub.send_keys(Keys.HOME)  # keyboard scrubbing to the first frame
    v.wait(lambda: "epoch %d" % want[0][0] in v.text("frame-label"), "frame label of the first epoch")
    v.wait_drawn(want[0][1])
    check(v.canvas_hash() != before, "scrubbing changed the scatter")
    scrub.send_keys(Keys.RIGHT)
    v.wait(lambda: "epoch %d" % want[1][0] in v.text("frame-label"), "frame label after one step right")
    v.wait_drawn(want[1][1])
    v.shot("scrub_epoch1")
    # play runs through the frames to the end
    v.d.find_element("id", "play").click()
    v.wait(lambda: "epoch %d" % want[-1][0] in v.text("frame-label"), "playback reaches the last epoch", 20)
    v.wait(lambda: "play" in v.text("play") and "pause" not in v.text("play"), "playback stops at the end")


ISOLATED = """
const s = MM.app.scatter, X = s.X, Y = s.Y; let best = -1, bestD = -1;
const stride = Math.max(1, Math.floor(X.length / 400));  // candidates: at most ~400 nodes
for (let i = 0; i < X.length; i += stride) {
  if (isNaN(X[i])) continue;
  let m = Infinity;
  for (let j = 0; j < X.length; j++) if (j !== i && !isNaN(X[j])) m = Math.min(m, (X[i]-X[j])**2 + (Y[i]-Y[j])**2);
  if (m > bestD) { bestD = m; best = i; }
}
const p = s.screenPos(best), f = s.frame;
return {i: best, x: p.x, y: p.y, unit: best % f.units, w: s.canvas.clientWidth, h: s.canvas.clientHeight};
"""


def hover_isolated(v):
    from selenium.webdriver.common.action_chains import ActionChains
    p = v.js(ISOLATED)
    canvas = v.d.find_element("id", "scatter")
    # selenium 4 offsets are from the element's centre
    ActionChains(v.d).move_to_element_with_offset(canvas, int(p["x"] - p["w"] / 2), int(p["y"] - p["h"] / 2)).perform()
    return p, canvas


def case_hover(v, a):
    from selenium.webdriver.common.action_chains import ActionChains
    run = os.path.join(a.data, "sample_run")
    v.d.get(v.serve(run) + "viewer/index.html?run=/run/")
    v.wait_drawn()
    p, canvas = hover_isolated(v)
    tip = v.d.find_element("id", "tooltip")
    v.wait(lambda: tip.is_displayed(), "the tooltip")
    check("unit %d " % p["unit"] in tip.text + " ", "tooltip names unit %d: %r" % (p["unit"], tip.text))
    check("epoch" in tip.text and "time step" in tip.text and "most active class" in tip.text, "tooltip fields: " + tip.text)
    v.shot("hover")
    before = v.canvas_hash()
    ActionChains(v.d).click().perform()  # click: pin the point, highlight its unit's trajectory
    v.wait(lambda: "unit %d " % p["unit"] in v.text("point-info") + " ", "point panel")
    time.sleep(0.3)
    check(v.canvas_hash() != before, "highlighting the unit changed the scatter")
    check(v.d.find_element("id", "hl-unit").get_attribute("value") == str(p["unit"]), "unit field filled in")
    v.shot("highlight_unit")
    v.d.find_element("id", "hl-slice-go").click()
    time.sleep(0.3)
    v.shot("highlight_slice")
    v.d.find_element("id", "hl-clear").click()
    time.sleep(0.3)


def case_truncated(v, a):
    run = os.path.join(a.data, "sample_run_truncated")
    want = present_counts(run)
    v.d.get(v.serve(run) + "viewer/index.html?run=/run/")
    v.wait_drawn(want[-1][1])
    v.wait(lambda: "incomplete last line" in v.text("notices"), "a notice about the truncated line")
    check("epoch %d" % want[-1][0] in v.text("frame-label"), "last complete frame shown")
    v.shot("truncated")


def case_three_d(v, a):
    from selenium.webdriver.common.action_chains import ActionChains
    run = os.path.join(a.data, "sample_run_3d")
    want = present_counts(run)
    v.d.get(v.serve(run) + "viewer/index.html?run=/run/")
    v.wait_drawn(want[-1][1])
    check(v.d.find_element("id", "rotate-controls").is_displayed(), "rotation controls for a 3-D run")
    before = v.canvas_hash()
    canvas = v.d.find_element("id", "scatter")
    ActionChains(v.d).move_to_element(canvas).click_and_hold().move_by_offset(120, 40).release().perform()
    time.sleep(0.3)
    check(v.canvas_hash() != before, "dragging rotated the 3-D view")
    check(v.drawn() == want[-1][1], "same points after rotation")
    v.shot("three_d")


def case_file_picker(v, a):
    # A finished run opened without any server: file:// page + "Open files…".
    run = os.path.join(a.data, "sample_run")
    want = present_counts(run)
    v.d.get("file://" + os.path.abspath(os.path.join(a.viewer, "index.html")))
    files = [os.path.join(run, n) for n in ("frames.jsonl", "node_index.json")]
    files += [os.path.join(run, "frames", n) for n in sorted(os.listdir(os.path.join(run, "frames")))]
    v.d.find_element("id", "open-files").send_keys("\n".join(os.path.abspath(f) for f in files))
    v.wait_drawn(want[-1][1])  # the last frame's coordinates come from a sidecar
    v.shot("file_picker")


def fresh_copy_of_sample_run(a, name):
    """A writable copy of the recorded sample run under the work folder: (source, copy)."""
    src = os.path.join(a.data, "sample_run")
    run = os.path.join(a.work, name)
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(src, run)
    return src, run


def case_live(v, a):
    # A "running training": frames.jsonl grows while the viewer follows it.
    src, run = fresh_copy_of_sample_run(a, "live_run")
    lines = open(os.path.join(src, "frames.jsonl")).read().splitlines(True)
    want = present_counts(src)
    emb_lines = [i for i, l in enumerate(lines) if '"type":"embedding"' in l]
    first = emb_lines[2] + 1  # three embedding frames written so far, and half of the next line
    with open(os.path.join(run, "frames.jsonl"), "w") as f:
        f.write("".join(lines[:first]) + lines[first][:40])
    v.d.get(v.serve(run) + "viewer/index.html?run=/run/&live=1")
    v.wait_drawn(want[2][1])
    check("epoch %d" % want[2][0] in v.text("frame-label"), "shows the newest frame: " + v.text("frame-label"))
    check("incomplete" not in v.text("notices"), "a line being written is not an error in live mode")
    v.shot("live_before")
    with open(os.path.join(run, "frames.jsonl"), "a") as f:
        f.write(lines[first][40:] + "".join(lines[first + 1:]))
    v.wait(lambda: "epoch %d" % want[-1][0] in v.text("frame-label"), "the viewer follows to the last epoch", 20)
    v.wait_drawn(want[-1][1])
    check(v.js("return MM.app.emb.length") == len(want), "every frame arrived")
    check("live" in v.text("live-status"), "live status shown")
    v.shot("live_after")


def case_hostile(v, a):
    # Untrusted frames: HTML in names stays text; a malformed middle line is skipped with a notice.
    _, run = fresh_copy_of_sample_run(a, "hostile_run")
    ni = json.load(open(os.path.join(run, "node_index.json")))
    evil = "<img src=x onerror=\"document.title='pwned'\">"
    for m in ni["units_meta"]:
        m["layer"] = evil
    json.dump(ni, open(os.path.join(run, "node_index.json"), "w"))
    lines = open(os.path.join(run, "frames.jsonl")).read().splitlines(True)
    out = []
    for i, l in enumerate(lines):
        d = json.loads(l)
        if d["type"] == "embedding":
            d["metrics"][evil] = 1.0
        if d["type"] == "event":
            d["message"] = evil
        out.append(json.dumps(d) + "\n")
        if i == 3:
            out.append("{this is not json\n")
    out.append(json.dumps({"schema_version": 1, "type": "event", "run_id": "x", "frame": 99, "epoch": 7,
                           "global_step": 1, "wall_time": 1.0, "event": "frame_failed", "message": evil}) + "\n")
    open(os.path.join(run, "frames.jsonl"), "w").write("".join(out))
    v.d.get(v.serve(run) + "viewer/index.html?run=/run/")
    v.wait_drawn()
    from selenium.webdriver.support.ui import Select
    Select(v.d.find_element("id", "color-mode")).select_by_value("layer")
    time.sleep(0.3)
    check(evil in v.text("legend"), "the layer name is shown as text: " + v.text("legend"))
    check(evil in v.text("frame-info"), "the metric name is shown as text")
    check("line 5: skipped" in v.text("notices"), "malformed line noticed: " + v.text("notices"))
    check(evil in v.text("notices"), "event message shown as text")
    check(len(v.d.find_elements("css selector", "img")) == 0, "no element was created from frame text")
    check(v.d.title != "pwned", "no script ran")
    v.shot("hostile")


def present_in_units(run_dir, keep_unit):
    """Present nodes of the last embedding frame whose unit passes keep_unit (from the files)."""
    last = None
    with open(os.path.join(run_dir, "frames.jsonl")) as f:
        for line in f:
            if line.endswith("\n") and '"type":"embedding"' in line.replace(" ", ""):
                last = json.loads(line)
    dims, units = last["n_components"], last["window"]["units"]
    if "coords" in last:
        c = last["coords"]
    else:
        raw = open(os.path.join(run_dir, last["coords_file"]["path"]), "rb").read()
        c = struct.unpack("<%df" % (len(raw) // 4), raw)
    n = 0
    for i in range(last["n_nodes"]):
        v = c[i * dims:(i + 1) * dims]
        n += keep_unit(i % units) and all(x is not None and math.isfinite(x) for x in v)
    return n


def case_layer_filter(v, a):
    # A run of two recorded layers (one monitor, units side by side): colour by layer and show one.
    from selenium.webdriver.support.ui import Select
    src, run = fresh_copy_of_sample_run(a, "two_layer_run")
    v.d.get(v.serve(src) + "viewer/index.html?run=/run/")
    v.wait_drawn()
    check(not v.d.find_element("id", "layer-filter-row").is_displayed(), "no layer filter for a one-layer run")
    v.server.terminate()
    v.server.wait(10)
    ni = json.load(open(os.path.join(run, "node_index.json")))
    half = ni["units"] // 2
    ni["units_meta"] = [{"layer": "lstm.l0" if u < half else "lstm.l1", "direction": 0, "unit": u % half}
                        for u in range(ni["units"])]
    ni["layers"] = [{"name": "lstm.l0", "first_unit": 0, "units": half, "directions": 1},
                    {"name": "lstm.l1", "first_unit": half, "units": half, "directions": 1}]
    json.dump(ni, open(os.path.join(run, "node_index.json"), "w"))
    total = present_in_units(run, lambda u: True)
    second = present_in_units(run, lambda u: u >= half)
    check(0 < second < total, "both layers have present nodes (%d of %d)" % (second, total))
    v.d.get(v.serve(run) + "viewer/index.html?run=/run/")
    v.wait_drawn(total)
    row = v.d.find_element("id", "layer-filter-row")
    check(row.is_displayed(), "a layer filter for a two-layer run")
    sel = Select(v.d.find_element("id", "layer-filter"))
    labels = [o.text for o in sel.options]
    check(labels == ["all layers", "layer lstm.l0", "layer lstm.l1"], "layer filter options: %r" % labels)
    Select(v.d.find_element("id", "color-mode")).select_by_value("layer")
    time.sleep(0.3)
    legend = v.text("legend")
    check("lstm.l0" in legend and "lstm.l1" in legend, "layer legend names both layers: " + legend)
    all_hash = v.canvas_hash()
    sel.select_by_visible_text("layer lstm.l1")
    v.wait_drawn(second)
    check(v.canvas_hash() != all_hash, "the filter changed the scatter")
    v.shot("layer_filter_l1")
    # Hovering finds only the shown layer's units.
    p = v.js("""
      const s = MM.app.scatter, f = s.frame;
      for (let i = 0; i < s.X.length; i++) if (s.visible(i) && !isNaN(s.X[i])) {
        const q = s.screenPos(i); return {x: q.x, y: q.y, w: s.canvas.clientWidth, h: s.canvas.clientHeight};
      }
      return null;""")
    check(p is not None, "a visible point")
    from selenium.webdriver.common.action_chains import ActionChains
    canvas = v.d.find_element("id", "scatter")
    ActionChains(v.d).move_to_element_with_offset(canvas, int(p["x"] - p["w"] / 2), int(p["y"] - p["h"] / 2)).perform()
    tip = v.d.find_element("id", "tooltip")
    v.wait(lambda: tip.is_displayed(), "the tooltip")
    check("(lstm.l1 " in tip.text, "the hovered point is in the shown layer: %r" % tip.text)
    sel.select_by_visible_text("all layers")
    v.wait_drawn(total)


def case_perf_128k(v, a):
    # 128,000 points per frame: each redraw must stay interactive.
    run = os.path.join(a.work, "big_run")
    if not os.path.exists(os.path.join(run, "frames.jsonl")):
        subprocess.check_call([sys.executable, os.path.join(a.data, "make_sample_run.py"), run, "--epochs", "2",
                               "--window", "2", "--steps", "64", "--units", "1000", "--sidecar-above", "0"])
    want = present_counts(run)
    check(want[-1][1] > 127000, "the big run has ~128k present nodes")
    v.d.get(v.serve(run) + "viewer/index.html?run=/run/")
    v.wait_drawn(want[-1][1])
    times = []
    for mode in ("epoch", "unit", "class", "step"):
        times.append(v.js("""
          const app = MM.app; app.mode = arguments[0];
          app.scatter.setColors(MM.frameColors(app.scatter.frame, app.mode, app.layout, app.range));
          const t0 = performance.now(); app.scatter.draw(); return performance.now() - t0;""", mode))
    times.sort()
    print("128k-point redraw: median %.1f ms (all: %s)" % (times[len(times) // 2], ", ".join("%.1f" % t for t in times)))
    check(times[len(times) // 2] < 250, "median redraw of 128k points under 250 ms")
    hover_isolated(v)
    v.wait(lambda: v.d.find_element("id", "tooltip").is_displayed(), "hover on 128k points")
    v.shot("perf_128k")


CASES = {k[5:]: f for k, f in globals().items() if k.startswith("case_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mmphate", required=True)
    ap.add_argument("--viewer", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--shots", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    a = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        print("SKIP: chromium is not installed (scripts/setup.sh installs it)")
        return SKIP
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("FAIL: python3-selenium is missing (run scripts/setup.sh)")
        return 1
    if not os.path.exists(DRIVER):
        print("FAIL: chromedriver is missing (chromium-driver; run scripts/setup.sh)")
        return 1
    os.makedirs(a.work, exist_ok=True)
    v = Viewer(a)
    try:
        CASES[a.case](v, a)
        logs = v.d.get_log("browser") if hasattr(v.d, "get_log") else []
        severe = [l for l in logs if l.get("level") == "SEVERE" and "favicon" not in l.get("message", "")]
        check(not severe, "no errors in the browser console: %s" % severe)
    except AssertionError as e:
        v.shot("FAILED_" + a.case)
        print("FAIL %s: %s" % (a.case, e))
        return 1
    finally:
        v.close()
    stale = os.path.join(a.shots, "FAILED_" + a.case + ".png")
    if os.path.exists(stale):
        os.remove(stale)  # from an earlier failing run
    print("PASS " + a.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())

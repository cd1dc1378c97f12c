#!/usr/bin/env python3
"""Draws a window of a gort execution trace (GORT_TRACE's JSON) as SVG.

    trace2svg.py TRACE.json OUT.svg [--from US] [--to US] [--around NAME]
                 [--width PX] [--title TEXT]

The window is --from..--to in microseconds from the trace's start, or, with
--around NAME, the span of the slices of goroutines started by function
NAME, with a margin. Perfetto (ui.perfetto.dev) and chrome://tracing open
the JSON itself; this is for a picture in a document, and for a trace too
big to load there: it reads the file a line at a time (the writer puts one
event per line) and keeps only what falls in the window.

Tracks: one per P (goroutine slices, coloured by start function, with their
creations, steals, timers, polls and hand-offs as ticks), then one per M
that did something in the window (grey: parked in stopm; orange: a system
call). Thin lines are flow arrows: who created or readied whom.
"""
import argparse
import colorsys
import hashlib
import html
import json
import math
import re
import sys

TS = re.compile(r'"ts":([0-9.]+)')
DUR = re.compile(r'"dur":([0-9.]+)')


def events(path):
    with open(path) as f:
        for line in f:
            line = line.strip().strip(",")
            if line.startswith("{") and line.endswith("}") and '"ph"' in line:
                yield line


def colour(name):
    h = int(hashlib.md5(name.encode()).hexdigest()[:6], 16) / float(1 << 24)
    r, g, b = colorsys.hls_to_rgb(h, 0.62, 0.55)
    return "#%02x%02x%02x" % (int(r * 255), int(g * 255), int(b * 255))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--from", dest="t0", type=float)
    ap.add_argument("--to", dest="t1", type=float)
    ap.add_argument("--around")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--title", default="")
    a = ap.parse_args()

    t0, t1 = a.t0, a.t1
    if a.around:
        lo, hi = None, None
        for line in events(a.trace):
            if '"ph":"X"' in line and '"name":"%s"' % a.around in line:
                ts = float(TS.search(line).group(1))
                end = ts + float(DUR.search(line).group(1))
                lo = ts if lo is None else min(lo, ts)
                hi = end if hi is None else max(hi, end)
        if lo is None:
            sys.exit("trace2svg: no slice named %s" % a.around)
        margin = (hi - lo) * 0.05
        t0, t1 = lo - margin, hi + margin
    if t0 is None or t1 is None or t1 <= t0:
        sys.exit("trace2svg: give --from and --to, or --around")

    slices, mslices, instants, flows_s, flows_f = [], [], [], {}, {}
    names = {}
    open_b = {}
    bes = []
    for line in events(a.trace):
        m = TS.search(line)
        if not m:
            continue
        ts = float(m.group(1))
        ph = line[7:8] if line.startswith('{"ph":"') else json.loads(line)["ph"]
        if ph == "M":
            e = json.loads(line)
            if e["name"] == "thread_name":
                names[(e["pid"], e["tid"])] = e["args"]["name"]
            continue
        if ph == "X":
            d = DUR.search(line)
            if ts > t1 or ts + float(d.group(1)) < t0:
                continue
            slices.append(json.loads(line))
        elif ph in "BE":
            bes.append(json.loads(line))   # paired below, in time order
        elif t0 <= ts <= t1:
            e = json.loads(line)
            if ph == "i":
                instants.append(e)
            elif ph == "s":
                flows_s[(e["cat"], e["id"])] = e
            elif ph == "f":
                flows_f[(e["cat"], e["id"])] = e
    # The file holds each P's events and the P-less ones in the order their
    # buffers were written, not in time order: pair B and E by time.
    for e in sorted(bes, key=lambda e: e["ts"]):
        k = e["tid"]
        if e["ph"] == "B":
            open_b[k] = e
        elif k in open_b:
            b = open_b.pop(k)
            if b["ts"] <= t1 and e["ts"] >= t0:
                mslices.append((k, b["ts"], e["ts"], b["name"]))
    for k, b in open_b.items():   # still open when the trace ended
        if b["ts"] <= t1:
            mslices.append((k, b["ts"], t1, b["name"]))

    ps = sorted({e["tid"] for e in slices} | {e["tid"] for e in instants if e["pid"] == 1})
    ms = sorted({k for k, *_ in mslices} | {e["tid"] for e in instants if e["pid"] == 2})
    tracks = [(1, p) for p in ps] + [(2, m) for m in ms]
    row, top, left = 26, 40 + (18 if a.title else 0), 60
    legend_h = 40
    height = top + row * len(tracks) + 30 + legend_h
    W = a.width
    scale = (W - left - 10) / (t1 - t0)
    X = lambda t: left + (min(max(t, t0), t1) - t0) * scale
    Y = {t: top + i * row for i, t in enumerate(tracks)}

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="11">' % (W, height),
           '<rect width="100%" height="100%" fill="white"/>']
    if a.title:
        out.append('<text x="%d" y="18" font-size="13" font-weight="bold">%s</text>'
                   % (left, html.escape(a.title)))
    # time axis
    span = t1 - t0
    step = 10 ** int(math.floor(math.log10(span / 5)))
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= 10:
            step *= mult
            break
    t = (int(t0 / step) + 1) * step
    while t < t1:
        x = X(t)
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' %
                   (x, top - 6, x, top + row * len(tracks)))
        label = ("%.0f ms" % (t / 1000)) if step >= 1000 else ("%.0f us" % t)
        out.append('<text x="%.1f" y="%d" fill="#666" text-anchor="middle">%s</text>' %
                   (x, top - 10, label))
        t += step
    for tr in tracks:
        y = Y[tr]
        name = names.get(tr, ("P%d" if tr[0] == 1 else "M%d") % tr[1])
        out.append('<text x="6" y="%d" font-weight="bold">%s</text>' % (y + 16, html.escape(name)))
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#eee"/>' %
                   (left, y + row - 2, W - 10, y + row - 2))
    # Slices of one function closer than a pixel are drawn as one rectangle:
    # a window of a busy program holds millions of them.
    seen = {}
    runs = []
    slices.sort(key=lambda e: (e["tid"], e["ts"]))
    for e in slices:
        x0, x1 = X(e["ts"]), X(e["ts"] + e["dur"])
        r = runs[-1] if runs else None
        if r and r[0] == e["tid"] and r[3] == e["name"] and x0 - r[2] < 1:
            r[2] = max(r[2], x1)
            r[4] += 1
            r[5].add(e["args"]["goid"])
        else:
            runs.append([e["tid"], x0, x1, e["name"], 1, {e["args"]["goid"]}, e["args"]["end"]])
    for tid, x0, x1, name, n, goids, end in runs:
        y = Y[(1, tid)]
        c = colour(name)
        seen[name] = c
        if n == 1:
            title = "%s (goroutine %d), ended: %s" % (name, next(iter(goids)), end)
        else:
            title = "%s: %d slices of %d goroutines" % (name, n, len(goids))
        out.append('<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s">'
                   '<title>%s</title></rect>' %
                   (x0, y + 3, max(x1 - x0, 0.6), row - 8, c, html.escape(title)))
        if x1 - x0 > 7 * len(name) + 6:
            out.append('<text x="%.1f" y="%d">%s</text>' % (x0 + 3, y + 16, html.escape(name)))
    for k, b, e, name in mslices:
        y = Y[(2, k)]
        c = "#e0e0e0" if name == "idle" else "#f0a040"
        out.append('<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s"><title>%s</title></rect>'
                   % (X(b), y + 3, max(X(e) - X(b), 0.6), row - 8, c, name))
        if X(e) - X(b) > 45:
            out.append('<text x="%.1f" y="%d" fill="#555">%s</text>' % (X(b) + 3, y + 16, name))
    marks = {"go create": "#2a8a2a", "timer": "#2060c0", "netpoll": "#8030a0",
             "handoff": "#d02020", "newm": "#000000", "steal": "#a06020"}
    for e in instants:
        tr = (e["pid"], e["tid"])
        if tr not in Y:
            continue
        x, y = X(e["ts"]), Y[tr]
        c = marks.get(e["name"], "#444")
        out.append('<path d="M%.1f %d l-3 -5 h6 z" fill="%s"><title>%s</title></path>' %
                   (x, y + 4, c, html.escape(e["name"])))
    for k, f in flows_f.items():
        s = flows_s.get(k)
        if s is None:
            continue
        ys, yf = Y.get((s["pid"], s["tid"])), Y.get((f["pid"], f["tid"]))
        if ys is None or yf is None:
            continue
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333" stroke-opacity="0.35" '
                   'stroke-width="0.8"/>' % (X(s["ts"]), ys + row // 2, X(f["ts"]), yf + row // 2))
    # legend
    y = top + row * len(tracks) + 24
    x = left
    for name, c in sorted(seen.items()):
        out.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/>' % (x, y - 9, c))
        out.append('<text x="%d" y="%d">%s</text>' % (x + 14, y, html.escape(name)))
        x += 24 + 7 * len(name)
        if x > W - 150:
            x, y = left, y + 16
    for name, c in (("idle M", "#e0e0e0"), ("syscall", "#f0a040")):
        out.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/>' % (x, y - 9, c))
        out.append('<text x="%d" y="%d">%s</text>' % (x + 14, y, name))
        x += 30 + 7 * len(name)
    for name, c in marks.items():
        out.append('<path d="M%d %d l-3 -5 h6 z" fill="%s"/>' % (x + 3, y - 1, c))
        out.append('<text x="%d" y="%d">%s</text>' % (x + 10, y, name))
        x += 20 + 7 * len(name)
    out.append("</svg>")
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print("trace2svg: %d slices, %d M slices, %d instants, %d arrows, %.1f..%.1f us -> %s" %
          (len(slices), len(mslices), len(instants), len(flows_f), t0, t1, a.out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Checks an execution trace of tests/trace/traced.c (ctest: trace_json).

    check.py TRACE.json env|api

The trace must be Chrome Trace Event JSON as Perfetto and chrome://tracing
read it, and must show what traced.c did: its goroutines' slices on the P
tracks, named by start function, ended for the right reasons; creations and
unparks as flow arrows from the slice that made them to the slice that ran
next; the system call on an M track. Prints "trace-check: ok" or the first
things wrong, and exits 1.
"""
import collections
import json
import sys

EPS = 0.002  # us: the JSON has ns resolution


def main():
    path, mode = sys.argv[1], sys.argv[2]
    errors = []

    def check(cond, msg):
        if not cond:
            errors.append(msg)
        return cond

    with open(path) as f:
        doc = json.load(f)
    check(doc.get("displayTimeUnit") == "ns", "displayTimeUnit is not ns")
    check(doc.get("otherData", {}).get("lost_event_words") == 0, "events were lost")
    evs = doc["traceEvents"]
    for e in evs:
        for k in ("ph", "pid", "tid", "ts"):
            if not check(k in e, "event without %s: %r" % (k, e)):
                return report(errors)

    meta = {(e["pid"], e["tid"]): e["args"]["name"] for e in evs
            if e["ph"] == "M" and e["name"] == "thread_name"}
    procs = {e["pid"]: e["args"]["name"] for e in evs
             if e["ph"] == "M" and e["name"] == "process_name"}
    check(procs.get(1, "").startswith("gort: Ps"), "no process name for the P tracks")
    check(procs.get(2, "").startswith("gort: Ms"), "no process name for the M tracks")
    for e in evs:
        if e["ph"] != "M" and e["tid"] >= 0:
            check((e["pid"], e["tid"]) in meta, "track %s/%s has no name" % (e["pid"], e["tid"]))

    # Goroutine slices: on P tracks, named, not overlapping on one track.
    slices = [e for e in evs if e["ph"] == "X"]
    bytrack = collections.defaultdict(list)
    for s in slices:
        check(s["pid"] == 1 and meta.get((1, s["tid"]), "").startswith("P"),
              "slice off a P track: %r" % s)
        check(s["dur"] >= 0, "negative duration: %r" % s)
        check("goid" in s["args"] and "end" in s["args"], "slice without goid/end: %r" % s)
        bytrack[s["tid"]].append(s)
    for tid, ss in bytrack.items():
        ss.sort(key=lambda s: s["ts"])
        for a, b in zip(ss, ss[1:]):
            check(a["ts"] + a["dur"] <= b["ts"] + EPS,
                  "P%d: slices overlap: %s@%.3f+%.3f and %s@%.3f" %
                  (tid, a["name"], a["ts"], a["dur"], b["name"], b["ts"]))
    names = collections.Counter(s["name"] for s in slices)
    for fn in ("pinger", "ponger", "worker", "sleeper", "syscaller", "yielder", "tmain",
               "early", "foreigner"):
        check(names[fn] > 0, "no slice named %s (have %s)" % (fn, dict(names)))
    check(names["?"] == 0, "%d slices not named by their start function" % names["?"])
    ends = collections.Counter((s["name"], s["args"]["end"]) for s in slices)
    for fn in ("pinger", "ponger"):   # which side waits depends on where they run
        check(ends[(fn, "chan receive")] + ends[(fn, "chan send")] >= 100,
              "%s: fewer than 100 slices ended on a channel" % fn)
    for fn, why in (("sleeper", "sleep"), ("syscaller", "syscall"), ("yielder", "yield"),
                    ("worker", "exit"), ("pinger", "exit"), ("tmain", "sync.WaitGroup.Wait")):
        check(ends[(fn, why)] > 0, "no %s slice ended by %r" % (fn, why))
    check(names["pinger"] >= 100 and names["ponger"] >= 100,
          "ping-pong: %d and %d slices for 100 round trips" % (names["pinger"], names["ponger"]))
    goids = collections.defaultdict(set)
    for s in slices:
        goids[s["name"]].add(s["args"]["goid"])
    check(len(goids["worker"]) == 50, "%d worker goroutines, not 50" % len(goids["worker"]))

    # Creations: an instant with the new goroutine's function.
    creates = [e for e in evs if e["ph"] == "i" and e["name"] == "go create"]
    made = collections.Counter(e["args"]["fn"] for e in creates)
    check(made["worker"] == 50, "%d worker creations, not 50" % made["worker"])
    for fn in ("pinger", "ponger", "sleeper", "syscaller", "yielder"):
        check(made[fn] == 1, "%d creations of %s" % (made[fn], fn))

    # Flows: every arrow's end has its start, no later than it; each binds
    # to the slice enclosing it on its track.
    starts = {(e["cat"], e["id"]): e for e in evs if e["ph"] == "s"}
    finishes = [e for e in evs if e["ph"] == "f"]
    check(len(finishes) >= 2 * 100 + 55, "only %d flow arrows" % len(finishes))

    def enclosing(e):
        # Strictly inside: the writer puts flow ends a nanosecond into a
        # slice, never on a boundary two slices share.
        for s in bytrack.get(e["tid"], []) if e["pid"] == 1 else []:
            if s["ts"] < e["ts"] < s["ts"] + s["dur"]:
                return s
        return None

    readied_by = collections.Counter()
    for f in finishes:
        s = starts.get((f["cat"], f["id"]))
        if not check(s is not None, "flow %s has no start" % f["id"]):
            continue
        check(s["name"] == f["name"], "flow %s: %s vs %s" % (f["id"], s["name"], f["name"]))
        check(s["ts"] <= f["ts"] + EPS, "flow %s goes back in time: %.3f -> %.3f" %
              (f["id"], s["ts"], f["ts"]))
        to = enclosing(f)
        fr = enclosing(s)
        if to is not None and fr is not None:
            readied_by[(fr["name"], to["name"], f["name"])] += 1
    check(readied_by[("pinger", "ponger", "go unpark")] >= 90,
          "ponger readied by pinger %d times of 100" % readied_by[("pinger", "ponger", "go unpark")])
    check(readied_by[("ponger", "pinger", "go unpark")] >= 90,
          "pinger readied by ponger %d times of 100" % readied_by[("ponger", "pinger", "go unpark")])
    check(readied_by[("tmain", "worker", "go create")] >= 45,
          "workers created by tmain: %d of 50 arrows" % readied_by[("tmain", "worker", "go create")])

    # M tracks: B/E balanced and nested; the system call is there.
    depth = collections.Counter()
    syscalls = 0
    for e in sorted((e for e in evs if e["ph"] in "BE"), key=lambda e: e["ts"]):
        check(e["pid"] == 2, "B/E off an M track: %r" % e)
        if e["ph"] == "B":
            depth[e["tid"]] += 1
            check(depth[e["tid"]] == 1, "M%d: nested slices at %.3f" % (e["tid"], e["ts"]))
            if e["name"] == "syscall" and e["args"]["goid"] in goids["syscaller"]:
                syscalls += 1
        else:
            depth[e["tid"]] -= 1
            check(depth[e["tid"]] >= 0, "M%d: end without begin at %.3f" % (e["tid"], e["ts"]))
    check(syscalls == 1, "%d syscall slices of syscaller on the M tracks" % syscalls)
    check(sum(1 for e in evs if e["ph"] == "i" and e["name"] == "timer") >= 2,
          "fewer than 2 timers fired (two sleeps)")
    if mode == "env":
        check(any(e["ph"] == "i" and e["name"] == "newm" for e in evs), "no newm")
    return report(errors)


def report(errors):
    if errors:
        for e in errors[:20]:
            print("trace-check: " + e)
        print("trace-check: FAILED (%d problems)" % len(errors))
        return 1
    print("trace-check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

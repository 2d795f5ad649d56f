"""Would the spike rule find more bursts counting expected negatives (summed P(negative))
instead of argmax-negative items? An offline check on a monitor's store, for the "all" series:

    python3 experiments/monitor_expected_negatives.py runs/replay/full/store.db runs/replay/bursts.json

It re-runs the rule of src/monitor/trends.rs (defaults: alpha 0.1, z 3, min-count 5,
min-negative 3, warm-up 6, cool-down 3, 10-minute windows) over the stored annotations twice,
once per way of counting negatives, and prints how many bursts got an "all" alert and how many
"all" alerts fell outside every burst (± one window). A study, not the monitor: the monitor
counts argmax-negative items.
"""
import datetime
import json
import math
import sqlite3
import sys

db = sqlite3.connect(sys.argv[1]); truth = json.load(open(sys.argv[2]))
rows = db.execute("SELECT time, annotation FROM items ORDER BY time").fetchall()
W = 600
wins = {}
for t, a in rows:
    a = json.loads(a); s = t // W * W
    c = wins.setdefault(s, [0, 0, 0.0]); c[0] += 1; c[1] += a.get("sentiment") == "negative"; c[2] += a.get("negative") or 0
def run(idx, z0=3.0):
    a = 0.1; neg = items = exc = 0.0; win = 0; last = -10**12; alerts = []
    for s in sorted(wins):
        cnt = wins[s][0]; n = wins[s][idx]; share = n / cnt
        p = neg / items if items else 0; b = p * (1 - p); spike = False
        if win >= 6 and cnt >= 5 and n >= 3 and s - last > 3 * W:
            z = (share - p) / math.sqrt(max(exc, 0) + b / cnt + b / items + 1e-4)
            if z >= z0: spike = True; last = s; alerts.append(s)
        if cnt >= 5 and win > 0 and not spike: exc = (1 - a) * exc + a * ((share - p) ** 2 - b / cnt)
        neg = (1 - a) * neg + n; items = (1 - a) * items + cnt; win += 1
    return alerts
ts = lambda x: int(datetime.datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp())
bursts = [(ts(b["start"]), ts(b["end"]), b["kind"]) for b in truth["bursts"]]
for name, idx in (("argmax count", 1), ("expected count", 2)):
    al = run(idx)
    found = [k for (s, e, k) in bursts if any(s // W * W <= x <= e // W * W + W for x in al)]
    fa = [x for x in al if not any(s // W * W - W <= x <= e // W * W + W for (s, e, k) in bursts)]
    print(f"{name}: 'all' alerts {len(al)}, bursts with an 'all' alert {len(found)}/9 ({found.count('untargeted')}/3 untargeted), alerts outside bursts {len(fa)}")

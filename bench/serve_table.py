"""The table of bench/serve_load.sh: one row per system, task and client count, with the ratios
the serving issue asks for (positio at 64 clients against the best Python server, and against
positio's own offline embed).

    python3 bench/serve_table.py runs/serve_load/results.jsonl
"""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("| task | system | clients | sequences/s | p50 ms | p99 ms | errors |")
print("|---|---|---:|---:|---:|---:|---:|")
for r in rows:
    p50 = f"{r['p50_ms']:.1f}" if "p50_ms" in r else "-"
    p99 = f"{r['p99_ms']:.1f}" if "p99_ms" in r else "-"
    print(f"| {r['task']} | {r['system']} | {r['clients']} | {r['sequences_per_s']:.1f} | {p50} | {p99} | {r['errors']} |")


def at(system, task, clients):
    return next((r for r in rows if r["system"] == system and r["task"] == task and r["clients"] == clients), None)


print()
for task in ["embed", "ner"]:
    mine = at("positio-serve", task, 64)
    if not mine:
        continue
    others = [r for r in rows if r["task"] == task and r["clients"] == 64 and r["system"] not in ("positio-serve", "positio-embed-offline")]
    if others:
        best = max(others, key=lambda r: r["sequences_per_s"])
        print(
            f"{task}, 64 clients: positio {mine['sequences_per_s']:.1f} seq/s (p99 {mine['p99_ms']:.0f} ms) = "
            f"{mine['sequences_per_s'] / best['sequences_per_s']:.2f}x the best Python server, {best['system']} "
            f"{best['sequences_per_s']:.1f} seq/s (p99 {best['p99_ms']:.0f} ms); errors {mine['errors']}"
        )
    offline = at("positio-embed-offline", task, 0)
    if offline:
        overhead = 1 - mine["sequences_per_s"] / offline["sequences_per_s"]
        print(f"{task}: server overhead against offline `positio embed` ({offline['sequences_per_s']:.1f} seq/s): {100 * overhead:.1f} %")
    short = at("positio-serve", task + "-short", 1)
    if short:
        print(f"{task}: one short request at 1 client: p50 {short['p50_ms']:.2f} ms, p99 {short['p99_ms']:.2f} ms")

#!/usr/bin/env python3
"""Turns the soak's results (benches/soak.sh) into soak.svg and soak.md.

    python3 benches/soak-plot.py benches/results/soak

Reads MODEL.tsv (the samples) and MODEL.log (ftpbench's output) of each model found there.
The SVG is written by hand: four panels (RSS, descriptors, handlers, timers over time), one
line per model, no plotting library needed.
"""

import html
import re
import sys
from pathlib import Path

SERIES = [
    ("rss_bytes", "RSS (MiB, all processes)", 1 / (1 << 20)),
    ("fds", "open descriptors (all processes)", 1),
    ("handlers", "loop handlers (all loops)", 1),
    ("timers", "loop timers (all loops)", 1),
]
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
ORDER = ["async", "pre-fork", "multi-loop", "multi-thread", "multi-proc"]


def read_tsv(path):
    lines = path.read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, map(float, l.split("\t")))) for l in lines[1:] if l.strip()]


def panel(x0, y0, w, h, title, runs, key, scale, warmup):
    out = []
    pts = [(s["secs"], s[key] * scale) for _, rows in runs for s in rows]
    if not pts:
        return out
    xmax = max(p[0] for p in pts) or 1
    vals = [p[1] for p in pts]
    lo, hi = min(vals), max(vals)
    lo, hi = (0, hi * 1.1) if hi > 0 else (0, 1)
    sx = lambda x: x0 + x / xmax * w
    sy = lambda y: y0 + h - (y - lo) / (hi - lo) * h
    out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    out.append(f'<text x="{x0}" y="{y0 - 8}" font-size="13">{html.escape(title)}</text>')
    wx = sx(min(warmup, xmax))
    out.append(f'<rect x="{x0}" y="{y0}" width="{wx - x0:.1f}" height="{h}" fill="#eee"/>')
    out.append(f'<text x="{x0 + 4}" y="{y0 + h - 4}" font-size="10" fill="#777">warm-up</text>')
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        y = sy(v)
        out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        label = f"{v:.0f}" if hi - lo >= 20 else f"{v:.1f}"
        out.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{label}</text>')
    for i in range(6):
        t = xmax * i / 5
        out.append(f'<text x="{sx(t):.1f}" y="{y0 + h + 14}" font-size="10" text-anchor="middle">{t:.0f} s</text>')
    for ci, (model, rows) in enumerate(runs):
        d = " ".join(f"{sx(s['secs']):.1f},{sy(s[key] * scale):.1f}" for s in rows)
        out.append(f'<polyline points="{d}" fill="none" stroke="{COLORS[ci % len(COLORS)]}" stroke-width="1.5"/>')
    return out


def summary(log):
    """The figures of one model's ftpbench output."""
    text = log.read_text(errors="replace") if log.exists() else ""
    got = {"verdict": "no result"}
    for line in text.splitlines():
        if m := re.match(r"soak: (\d+) sessions held in", line):
            got["held"] = m.group(1)
        elif m := re.match(r"soak: (\d+) churn sessions in (\d+) s \((\d+)/s of (\d+)/s asked\), worst p99 login latency of a round ([\d.]+) ms", line):
            got["churn"] = f"{m.group(3)}/s ({m.group(1)} in {m.group(2)} s)"
            got["p99"] = m.group(5)
        elif m := re.match(r"soak: (\d+) transfers of (\S+), (\S+) moved", line):
            got["transfers"] = f"{m.group(1)} of {m.group(2)} ({m.group(3)})"
        elif m := re.match(r"soak: errors: (.*)", line):
            got["errors"] = m.group(1)
        elif m := re.match(r"soak: (\S+)\s+after \d+ s: median (\d+), min (\d+), max (\d+), off the median by ([\d.]+) %", line):
            name, med, lo, hi, dev = m.groups()
            if name == "RSS":
                med, lo, hi = (f"{int(v) / (1 << 20):.1f} MiB" for v in (med, lo, hi))
            got[name] = f"{med} ({lo} – {hi}, ±{dev} %)"
        elif m := re.match(r"soak: (PASS|FAIL)$", line):
            got["verdict"] = m.group(1)
        elif m := re.match(r"# ([^,]+), ([^,]+), ([^,]+)", line):
            got["when"] = f"{m.group(2)}, {m.group(3)}"
    return got


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "benches/results/soak")
    warmup = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    models = sorted((p.stem for p in out.glob("*.tsv")),
                    key=lambda m: (ORDER.index(m) if m in ORDER else 99, m))
    runs = [(m, read_tsv(out / f"{m}.tsv")) for m in models]
    w, h, pad = 420, 170, 60
    width, height = 2 * (w + pad) + pad, 2 * (h + pad) + 70
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{pad}" y="22" font-size="15">ftpdlib soak: held sessions, churn and transfers, sampled every 10 s</text>']
    for ci, (m, _) in enumerate(runs):
        x = pad + 430 + ci * 110
        svg.append(f'<line x1="{x}" x2="{x + 24}" y1="17" y2="17" stroke="{COLORS[ci % len(COLORS)]}" stroke-width="3"/>')
        svg.append(f'<text x="{x + 30}" y="21" font-size="13">{html.escape(m)}</text>')
    for i, (key, title, scale) in enumerate(SERIES):
        x0 = pad + (i % 2) * (w + pad)
        y0 = 60 + (i // 2) * (h + pad)
        svg += panel(x0, y0, w, h, title, runs, key, scale, warmup)
    svg.append("</svg>")
    (out / "soak.svg").write_text("\n".join(svg) + "\n")

    rows = ["| | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    sums = [summary(out / f"{m}.log") for m in models]
    for key, name in [("when", "run (UTC, build)"), ("held", "sessions held"), ("churn", "churn: logins and QUITs"),
                      ("p99", "worst p99 login latency of a 1 s round (ms)"), ("transfers", "transfers"),
                      ("errors", "errors"), ("RSS", "RSS after warm-up: median (min – max)"),
                      ("descriptors", "descriptors after warm-up"), ("handlers", "loop handlers after warm-up"),
                      ("timers", "loop timers after warm-up"), ("verdict", "flat within 5 %, zero errors")]:
        rows.append(f"| {name} | " + " | ".join(s.get(key, "–") for s in sums) + " |")
    (out / "soak.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

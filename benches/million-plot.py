#!/usr/bin/env python3
"""Plots the login series of benches/million.sh into million.svg.

    python3 benches/million-plot.py benches/results/million

Reads series.tsv (ftpbench --series): every few seconds the sessions logged in, the logins
per second over the interval, the server's memory. Three panels over time, written by hand
(no plotting library needed).
"""

import sys
from pathlib import Path

PANELS = [
    ("logged_in", "sessions logged in (thousands)", 1e-3),
    ("logins_per_sec", "logins per second (over each interval)", 1),
    ("server_mem_bytes", "server memory, RSS - shared, all processes (MiB)", 1 / (1 << 20)),
]
W, H, PAD_L, PAD_R, PAD_T, PAD_B, GAP = 720, 170, 70, 20, 28, 30, 24


def read_tsv(path):
    lines = path.read_text().splitlines()
    head = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        if line.strip():
            rows.append({k: float(v) if v else 0.0 for k, v in zip(head, line.split("\t"))})
    return rows


def nice_max(v):
    if v <= 0:
        return 1
    step = 10 ** len(str(int(v))) / 10
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= v:
            return m * step
    return v


def panel(rows, key, title, scale, top, t_max):
    xs = [r["secs"] for r in rows]
    ys = [r[key] * scale for r in rows]
    y_max = nice_max(max(ys, default=0))
    plot_w = W - PAD_L - PAD_R
    plot_h = H - PAD_T - PAD_B

    def px(x):
        return PAD_L + plot_w * x / t_max

    def py(y):
        return top + PAD_T + plot_h * (1 - y / y_max)

    out = [f'<text x="{PAD_L}" y="{top + 18}" font-size="13">{title}</text>']
    for i in range(5):
        y = y_max * i / 4
        out.append(
            f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
            'stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{PAD_L - 6}" y="{py(y) + 4:.1f}" font-size="11" '
            f'text-anchor="end">{y:g}</text>'
        )
    for i in range(6):
        x = t_max * i / 5
        out.append(
            f'<text x="{px(x):.1f}" y="{top + H - 10}" font-size="11" '
            f'text-anchor="middle">{x:.0f} s</text>'
        )
    pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys))
    out.append(f'<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    return out


def main():
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "benches/results/million")
    rows = read_tsv(out_dir / "series.tsv")
    if not rows:
        sys.exit("million-plot.py: series.tsv is empty")
    t_max = nice_max(max(r["secs"] for r in rows))
    total_h = len(PANELS) * (H + GAP)
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{total_h}" '
        'font-family="sans-serif">',
        f'<rect width="{W}" height="{total_h}" fill="white"/>',
    ]
    for i, (key, title, scale) in enumerate(PANELS):
        svg += panel(rows, key, title, scale, i * (H + GAP), t_max)
    svg.append("</svg>")
    (out_dir / "million.svg").write_text("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()

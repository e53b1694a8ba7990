"""Scan benchmark: `nis2kube scan` against the parse floor (same files, same loader), and against Checkov.

    python benchmarks/scan_bench.py                      # 10k YAML, 10k JSON, 100k JSON; Checkov on the 10k YAML
    python benchmarks/scan_bench.py --checkov-objects 1000    # a quicker Checkov comparison (10k: about 3 minutes)
    python benchmarks/scan_bench.py --yaml-100k          # also the 100k cluster as YAML files

Every measurement is a whole process (start-up included), timed with wall clock and its peak RSS from
wait4(); ratios compare numbers taken in this run on this machine, which is what is meaningful here. Floor and
scan runs alternate (a machine that slows down mid-run slows both alike), after one warm-up run of each, and
the median of --repeat runs is reported. Both run from compiled bytecode, as an installed package does (pip
compiles it at install): the bytecode goes to benchmarks/cache/pycache even under PYTHONDONTWRITEBYTECODE,
which would otherwise make every run re-compile the sixty modules a scan imports.
Checkov runs from its own virtualenv (benchmarks/.data/checkov-venv; created with `pip install checkov`). The
synthetic clusters live in benchmarks/cache/: Checkov silently skips directories whose path has a hidden
component, so a dataset under `.data` would be "scanned" as 0 resources; the run refuses a Checkov result
without resources.
Targets (issue: audit engine): scan <= 1.5x parse floor; 100k objects <= 15 s; peak RSS <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from synthetic import write_json_list, write_yaml_tree  # noqa: E402

DATA = HERE / "cache"
CHECKOV = HERE / ".data" / "checkov-venv" / "bin" / "checkov"
FLOOR = "import sys; from nis2kube.inventory import from_paths; inv = from_paths(sys.argv[1:]); print(len(inv))"


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {
    "PYTHONPYCACHEPREFIX": str(DATA / "pycache")}  # fmt: skip


def run_once(cmd: list[str], stdout: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one run of a command (stdout kept when asked)."""
    start = time.perf_counter()
    with open(stdout or os.devnull, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:4])}... exited {code}")
    return elapsed, usage.ru_maxrss / 1024


def measure(*cmds: list[str], repeat: int = 1, stdout: Path | None = None) -> list[tuple[float, float]]:
    """For each command: median wall seconds and max peak RSS over `repeat` runs, the commands taking turns."""
    runs: list[list[tuple[float, float]]] = [[] for _ in cmds]
    for _ in range(repeat):
        for cmd, out in zip(cmds, runs, strict=True):
            out.append(run_once(cmd, stdout))
    return [(sorted(t for t, _ in out)[len(out) // 2], max(r for _, r in out)) for out in runs]


def dataset(kind: str, objects: int) -> tuple[Path, int]:
    target = DATA / f"{kind}-{objects}"
    marker = target.with_suffix(".count")
    if not marker.exists():
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        count = write_yaml_tree(objects, target) if kind == "yaml" else write_json_list(objects, target / "dump.json")
        marker.write_text(str(count))
    return target, int(marker.read_text())


def bench(kind: str, objects: int, repeat: int) -> dict:
    path, count = dataset(kind, objects)
    floor, scan = [sys.executable, "-c", FLOOR, str(path)], ["nis2kube", "scan", str(path), "-o", "json", "--out",
                                                              os.devnull]  # fmt: skip
    measure(floor, scan)  # warm-up: bytecode written, files in the page cache
    (floor_t, floor_rss), (scan_t, scan_rss) = measure(floor, scan, repeat=repeat)
    return {"set": f"{kind} {count:,}", "count": count, "path": path, "floor": floor_t, "floor_rss": floor_rss,
            "scan": scan_t, "scan_rss": scan_rss}  # fmt: skip


def checkov_resources(report: Path) -> int:
    """Resources Checkov says it scanned; zero means the measurement is meaningless, so it stops the run."""
    data = json.loads(report.read_bytes() or b"{}")
    runs = data if isinstance(data, list) else [data]
    count = sum(int((run.get("summary") or run).get("resource_count", 0)) for run in runs if isinstance(run, dict))
    if not count:
        raise SystemExit(f"Checkov scanned no resource (see {report}); its timing would be meaningless")
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median); default 3")
    parser.add_argument("--checkov-objects", type=int, default=10_000, help="Checkov set size (0 skips Checkov)")
    parser.add_argument("--yaml-100k", action="store_true", help="also benchmark 100k objects as YAML files")
    args = parser.parse_args()

    sets = [("yaml", 10_000), ("json", 10_000), ("json", 100_000)]
    if args.yaml_100k:
        sets.append(("yaml", 100_000))
    print(f"{'input':<14}{'parse floor':>13}{'scan':>10}{'scan/floor':>12}{'floor RSS':>12}{'scan RSS':>11}")
    rows = []
    for kind, objects in sets:
        r = bench(kind, objects, args.repeat)
        rows.append(r)
        print(f"{r['set']:<14}{r['floor']:>12.2f}s{r['scan']:>9.2f}s{r['scan'] / r['floor']:>11.2f}x"
              f"{r['floor_rss']:>10.0f}Mi{r['scan_rss']:>9.0f}Mi")  # fmt: skip

    if args.checkov_objects:
        if not CHECKOV.exists():
            print(f"\nCheckov: not installed; run: python3 -m venv {CHECKOV.parent.parent} && "
                  f"{CHECKOV.parent}/pip install checkov")  # fmt: skip
        else:
            path, count = dataset("yaml", args.checkov_objects)
            report = DATA / f"checkov-{count}.json"
            ck_t, ck_rss = run_once([str(CHECKOV), "--framework", "kubernetes", "-d", str(path), "--quiet",
                                     "--compact", "-o", "json"], stdout=report)  # fmt: skip
            resources = checkov_resources(report)
            ((ours_t, ours_rss),) = measure(["nis2kube", "scan", str(path), "-o", "json", "--out", os.devnull],
                                            repeat=args.repeat)  # fmt: skip
            print(f"\nCheckov --framework kubernetes, {count:,} objects ({resources:,} resources scanned): "
                  f"{ck_t:.1f} s, {ck_rss:.0f} MiB peak; "
                  f"nis2kube: {ours_t:.2f} s, {ours_rss:.0f} MiB -> nis2kube is {ck_t / ours_t:.0f}x faster "
                  f"({ck_t / count * 1000:.1f} ms vs {ours_t / count * 1000:.2f} ms per object)")  # fmt: skip

    big = next(r for r in rows if r["count"] >= 90_000 and r["set"].startswith("json"))
    worst = max(rows, key=lambda r: r["scan"] / r["floor"])
    print(f"\ntargets: 100k scan/floor <= 1.5x ({big['scan'] / big['floor']:.2f}x; worst of all sets "
          f"{worst['scan'] / worst['floor']:.2f}x, {worst['set']}); 100k <= 15 s ({big['scan']:.1f} s); "
          f"peak RSS <= 1536 MiB ({max(r['scan_rss'] for r in rows):.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

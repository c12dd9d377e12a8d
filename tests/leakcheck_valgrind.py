"""Native leak check under valgrind (run by hand; not collected by pytest, not run in CI).

    NNFAST_EXT_DIR=build/<dir> PYTHONPATH=python python tests/leakcheck_valgrind.py [--steps 1000]

Runs this file again as ``valgrind --leak-check=full python tests/leakcheck_valgrind.py --child``
with ``PYTHONMALLOC=malloc`` (so Python's own allocations are visible to valgrind
rather than hidden in pymalloc arenas). The child trains the MLP of
``tests/test_leaks.py`` (Linear + ReLU + Dropout + LayerNorm + Linear,
cross-entropy, clip_grad_norm_, Adam) for the given number of steps and exits.

The parent reads valgrind's report and prints, for "definitely lost" and
"indirectly lost", the whole-process totals and the part attributable to
nnfast: loss records with a frame in libnnfast.so or in the extension module
(nnfast._C). CPython itself leaves "possibly lost" and a few "definitely lost"
blocks at exit (interned objects, static types); those do not name nnfast and
are reported separately. Exit status 1 when any record names nnfast.

Needs valgrind on PATH. A valgrind run of 1,000 steps takes a few minutes.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
NNFAST_FRAME = re.compile(r"libnnfast|_C\.cpython|nnfast::|/csrc/")
HEADER = re.compile(r"==\d+== ([\d,]+) (?:\(([\d,]+) direct, ([\d,]+) indirect\) )?bytes in ([\d,]+) blocks are "
                    r"(definitely|indirectly|possibly) lost")


def child(steps: int) -> None:
    sys.path.insert(0, HERE)
    from test_leaks import make_run

    _, step = make_run()
    first = step()
    for _ in range(steps - 1):
        last = step()
    print(f"trained {steps} steps: loss {first:.4f} -> {last:.4f}", flush=True)


def parse(log: str) -> dict:
    """Sums of lost bytes per kind, overall and for records with an nnfast frame."""
    totals = {k: 0 for k in ("definitely", "indirectly", "possibly")}
    ours = dict(totals)
    records = []
    lines = log.splitlines()
    i = 0
    while i < len(lines):
        m = HEADER.search(lines[i])
        if not m:
            i += 1
            continue
        kind = m.group(5)
        nbytes = int(m.group(1).replace(",", ""))
        if m.group(2):  # "X (D direct, I indirect) bytes": count the direct part as this kind
            nbytes = int(m.group(2).replace(",", ""))
        frames = []
        i += 1
        while i < len(lines) and re.match(r"==\d+==\s+(at|by) ", lines[i]):
            frames.append(lines[i])
            i += 1
        totals[kind] += nbytes
        if any(NNFAST_FRAME.search(f) for f in frames):
            ours[kind] += nbytes
            if kind != "possibly":
                records.append((kind, nbytes, frames))
    summary = {}
    for key in ("definitely lost", "indirectly lost", "possibly lost", "still reachable"):
        m = re.search(rf"{key}: ([\d,]+) bytes in ([\d,]+) blocks", log)
        if m:
            summary[key] = int(m.group(1).replace(",", ""))
    return {"records": totals, "nnfast": ours, "nnfast_records": records, "summary": summary}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--log", help="keep valgrind's full report here")
    args = ap.parse_args()
    if args.child:
        child(args.steps)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind not found", file=sys.stderr)
        return 2
    log = args.log or os.path.join(tempfile.mkdtemp(prefix="nnfast-valgrind-"), "valgrind.log")
    env = dict(os.environ, PYTHONMALLOC="malloc")
    cmd = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible", "--num-callers=40",
           f"--log-file={log}", sys.executable, os.path.abspath(__file__), "--child", "--steps", str(args.steps)]
    print(" ".join(cmd), flush=True)
    r = subprocess.run(cmd, env=env)
    if r.returncode != 0:
        print(f"the child failed (exit {r.returncode}); see {log}", file=sys.stderr)
        return r.returncode
    with open(log) as f:
        res = parse(f.read())
    s = res["summary"]
    print(f"valgrind LEAK SUMMARY (whole process): definitely lost {s.get('definitely lost', 0)} B, indirectly lost "
          f"{s.get('indirectly lost', 0)} B, possibly lost {s.get('possibly lost', 0)} B, still reachable "
          f"{s.get('still reachable', 0)} B")
    n = res["nnfast"]
    print(f"attributable to nnfast (a frame in libnnfast / nnfast._C): definitely lost {n['definitely']} B, "
          f"indirectly lost {n['indirectly']} B, possibly lost {n['possibly']} B (possibly lost: objects the "
          f"extension module creates once at import, e.g. pybind11's type and function objects)")
    for kind, nbytes, frames in res["nnfast_records"]:
        print(f"--- {nbytes} B {kind} lost:\n" + "\n".join(frames[:12]))
    print(f"full report: {log}")
    return 1 if n["definitely"] or n["indirectly"] else 0


if __name__ == "__main__":
    sys.exit(main())

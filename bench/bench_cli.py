"""Start-up time of `tuilm --help` against a bare interpreter and an `import torch`, in one run.

    python bench/bench_cli.py [--repeat 10]

Prints medians and ratios. The CLI must not import torch, so its start-up should sit near the bare
interpreter plus Typer/Rich, far below the torch import.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    py = sys.executable
    wall([py, "-m", "tuiLM.cli", "--help"], 2)  # warm the file cache
    bare = wall([py, "-c", "pass"], args.repeat)
    helpt = wall([py, "-m", "tuiLM.cli", "--help"], args.repeat)
    validate = wall([py, "-m", "tuiLM.cli", "validate", "presets/quickstart.toml"], args.repeat)
    torch_t = wall([py, "-c", "import torch"], max(3, args.repeat // 3))
    print(f"python -c pass             {bare * 1000:8.1f} ms")
    print(f"tuilm --help               {helpt * 1000:8.1f} ms")
    print(f"tuilm validate quickstart  {validate * 1000:8.1f} ms")
    print(f"python -c 'import torch'   {torch_t * 1000:8.1f} ms")
    print(f"ratio help / import torch  {helpt / torch_t:8.2f}")
    print(f"ratio help / bare python   {helpt / bare:8.2f}")


if __name__ == "__main__":
    main()

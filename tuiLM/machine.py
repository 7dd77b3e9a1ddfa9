"""How much memory this machine gives a run, without importing torch (the CLI and the app use it).

Host RAM comes from /proc/meminfo (psutil where there is no /proc); a CUDA device's total from
``nvidia-smi`` (no CUDA context is created: the app must not hold GPU memory a run needs), else from
torch when the calling process has already imported it. Results are cached per process.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

GiB = 2**30


@dataclass(frozen=True)
class DeviceMemory:
    device: str  # "cpu" | "cuda"
    total_bytes: int
    label: str  # "host RAM", "NVIDIA H100 80GB HBM3"

    @property
    def gib(self) -> float:
        return self.total_bytes / GiB


@functools.lru_cache(maxsize=1)
def host_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # psutil missing or unsupported: unknown, never an error
        return None


@functools.lru_cache(maxsize=1)
def cuda_memory() -> DeviceMemory | None:
    """The first visible CUDA device's total memory, or None when no CUDA device is visible."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return None
    torch = sys.modules.get("torch")  # already imported by the caller (the trainer): ask it
    if torch is not None:
        try:
            if torch.cuda.is_available():
                props = torch.cuda.get_device_properties(0)
                return DeviceMemory("cuda", int(props.total_memory), str(props.name))
            return None
        except Exception:
            return None
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    cmd = [exe, "--query-gpu=memory.total,name", "--format=csv,noheader,nounits"]
    if visible:
        cmd += ["-i", visible]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
        mib, name = out.strip().splitlines()[0].split(",", 1)
        return DeviceMemory("cuda", int(float(mib)) * 2**20, name.strip())
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def resolve_device(pref: str) -> str | None:
    """What ``system.device`` will run on here: cuda, cpu, or None when it cannot be told (mps)."""
    if pref == "cuda":
        return "cuda"
    if pref == "cpu":
        return "cpu"
    if pref == "auto":
        return "cuda" if cuda_memory() is not None else ("cpu" if sys.platform != "darwin" else None)
    return None


def device_memory(device: str) -> DeviceMemory | None:
    """Memory of the device a run would use (host RAM for cpu); None when unknown or not visible."""
    if device == "cuda":
        return cuda_memory()
    if device == "cpu":
        total = host_memory_bytes()
        return DeviceMemory("cpu", total, "host RAM") if total else None
    return None


def other_trainers(run_dir: str | Path) -> list[Path]:
    """The run folders of the other tuiLM trainers on this host (``python -m tuiLM.train RUN_DIR``,
    read from /proc; torchrun's launcher and ranks of this run are not others). [] where it cannot
    be told. Two trainers that each take every CPU core slow each other down many times over."""
    me, found = Path(run_dir).resolve(), set()
    try:
        pids = [e.name for e in os.scandir("/proc") if e.name.isdigit() and e.name != str(os.getpid())]
    except OSError:
        return []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
            if b"tuiLM.train" not in args or args.index(b"tuiLM.train") + 1 >= len(args):
                continue
            run = Path(os.fsdecode(args[args.index(b"tuiLM.train") + 1]))
            run = (Path(os.readlink(f"/proc/{pid}/cwd")) / run).resolve() if not run.is_absolute() else run.resolve()
        except (OSError, ValueError, RuntimeError):  # gone meanwhile, another user's, a symlink loop
            continue
        if run != me:
            found.add(run)
    return sorted(found)

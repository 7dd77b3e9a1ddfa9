"""``python -m tuiLM.train RUN_DIR [--resume]``: the trainer process (also under torchrun)."""

from __future__ import annotations

import argparse
import os
import signal
import sys


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuiLM.train",
                                     description="Train the run in RUN_DIR (written by tuilm run / launch.create_run).")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    args = parser.parse_args(argv)
    early: list[int] = []
    _catch_early_stops(early)  # importing torch takes seconds: a stop meanwhile must not kill silently
    # under torchrun: the launcher, which holds the run's lock for every rank (taken before the import,
    # which a launcher killed meanwhile would otherwise outlast unseen)
    launcher = os.getppid() if os.environ.get("TORCHELASTIC_RUN_ID") else None
    from .trainer import main

    return main(args.run_dir, resume=args.resume, early_signals=early, launcher=launcher)


def _catch_early_stops(seen: list[int]) -> None:  # (read by trainer.main once its own handlers are in)
    """Until the trainer installs its own handlers: SIGINT / SIGTERM are noted in ``seen`` (the run then
    starts, stops before its first step and ends ``stopped``: a run_end, not a dead run with no
    events); a second Ctrl-C kills at once, as it does later."""

    def note(signum: int, frame: object) -> None:
        if seen and signum == signal.SIGINT:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        seen.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, note)


if __name__ == "__main__":
    sys.exit(cli())

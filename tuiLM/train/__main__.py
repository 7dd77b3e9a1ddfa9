"""``python -m tuiLM.train RUN_DIR [--resume]``: the trainer process (also under torchrun)."""

from __future__ import annotations

import argparse
import sys


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuiLM.train",
                                     description="Train the run in RUN_DIR (written by tuilm run / launch.create_run).")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    args = parser.parse_args(argv)
    from .trainer import main

    return main(args.run_dir, resume=args.resume)


if __name__ == "__main__":
    sys.exit(cli())

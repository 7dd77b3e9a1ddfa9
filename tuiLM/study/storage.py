"""Where a study lives: Optuna's own storages, and the study's folder under the runs folder.

Default: ``JournalStorage(JournalFileBackend(<runs>/studies/<name>/journal.log))`` — embedded, no
server, append-only (a kill loses nothing that was written). ``--storage URL`` picks a database
(``postgresql://...`` for many machines; ``sqlite:///...`` for one) or another journal file
(``journal:PATH`` or a path ending in ``.log``).

The study's definition travels with the storage (study user attributes), so a worker on another
machine needs only the name and the URL.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..runs import check_run_name, runs_root

JOURNAL = "journal.log"
SPEC_ATTR = "tuilm_spec"  # the study file's text as run
BASE_ATTR = "tuilm_base"  # the fully resolved base preset (with --set overrides) as TOML
TARGET_ATTR = "tuilm_target"  # trials in all, as the latest `study run / worker --trials N` (or the file) said
STOP_ATTR = "tuilm_stop_requested"
STOP_FILE = "stop_request"
WORKER_ATTR = "worker"  # [pid, process start time] of the trial's controller, written in one call
# Heartbeats: a controller writes the time into each of its running trials (BEAT_ATTR) every BEAT_S. A
# running trial of ANOTHER machine whose beat is older than STALE_S is taken for dead (its machine died
# for good): a controller fails it, saying why, and queues its configuration again as a new trial
# (retry_of), so the study still gets its trials. Not Optuna's own heartbeat (RDBStorage only, and it
# fails every quiet trial): a trial stopped on purpose (study stop) must not go stale, as it resumes
# from its checkpoints on its own machine, so its beat is set to None. A dead controller's trials on
# this machine are resumed by the next `study run` here (engine.recover), never failed. A controller
# with no work of its own left waits on a trial that has missed two beats (engine._fail_stale).
BEAT_ATTR = "beat"
BEAT_S = 60.0
STALE_S = 900.0


def counted(trials: list[Any]) -> list[Any]:
    """Trials that count toward a study's target: not the surplus a racing worker asked for, nor one
    failed for want of heartbeats whose configuration was queued again (its retry counts instead)."""
    again = retried(trials)
    return [t for t in trials if not t.user_attrs.get("surplus") and t.number not in again]


def retried(trials: list[Any]) -> dict[int, int]:
    """Trial -> the trial that runs its configuration again (engine._fail_stale)."""
    return {t.user_attrs["retry_of"]: t.number for t in trials
            if isinstance(t.user_attrs.get("retry_of"), int) and not t.user_attrs.get("surplus")}


def worker_of(attrs: dict) -> tuple[object, object]:
    """(pid, start time) of a trial's controller; a trial from before WORKER_ATTR: its worker_pid only
    (the attribute earlier versions wrote)."""
    w = attrs.get(WORKER_ATTR)
    if isinstance(w, list) and len(w) == 2:
        return w[0], w[1]
    return attrs.get("worker_pid"), None


def studies_root(root: str | Path | None = None) -> Path:
    return runs_root(root) / "studies"


def study_dir(name: str, root: str | Path | None = None) -> Path:
    return studies_root(root) / check_run_name(name, "study")


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def open_storage(name: str, url: str | None = None, root: str | Path | None = None, create: bool = False) -> Any:
    """An Optuna storage object for ``url`` (None: the study's own journal file). A journal file that
    does not exist is created only with ``create`` (reading commands never leave one behind)."""
    quiet_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if url is None or url.startswith("journal:") or url.endswith(".log"):
        path = Path(url[len("journal:"):] if url and url.startswith("journal:") else url) if url \
            else study_dir(name, root) / JOURNAL
        if not create and not path.is_file():
            if url is None:
                import difflib

                known = [p.name for p in list_local_studies(root)]
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                if path.parent.is_dir():  # a folder of that name, but its journal is gone
                    raise UserError(f"no study {name!r}: {path.parent}/ has no {JOURNAL} (the study's storage)")
                raise UserError(f"no study {name!r} in {studies_root(root)}/{hint}")
            raise UserError(f"no journal file {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create {path.parent}: {e.strerror}") from None
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise UserError(f"--storage {url!r}: expected a database URL (postgresql://..., sqlite:///...) or a "
                        "journal file (journal:PATH)", exit_code=2)
    if url.startswith("sqlite:///"):  # Optuna's own error for a file it cannot open is an internal one
        db = Path(url[len("sqlite:///"):].split("?", 1)[0])
        if db.is_dir() or (not create and not db.is_file()) or not db.parent.is_dir():
            why = "is a folder" if db.is_dir() else ("no such folder" if not db.parent.is_dir() else "no such file")
            raise UserError(f"--storage {url!r}: {db}: {why}", exit_code=2)
    from optuna.storages import RDBStorage

    try:
        # Only a command that creates studies creates tables: two processes creating them at once race
        # in PostgreSQL's catalogue (a UniqueViolation on pg_type); readers and workers never need to.
        for attempt in range(3):
            try:
                return RDBStorage(url, skip_table_creation=not create)
            except Exception as e:
                if not create or attempt == 2 or "UniqueViolation" not in f"{type(e).__name__}{e}":
                    raise
                time.sleep(0.5 + attempt)  # another process is creating the same tables: they will be there
    except ImportError:  # SQLAlchemy has no driver for the URL's database
        hint = "pip install psycopg2-binary" if url.startswith("postgres") else "install its Python driver"
        raise UserError(f"cannot open the storage {_redact(url)}: no database driver for it ({hint})") from None
    except Exception as e:  # a wrong URL, a server that is down
        raise UserError(f"cannot open the storage {_redact(url)}: {type(e).__name__}: {str(e).splitlines()[0]}") \
            from None


def _redact(url: str) -> str:
    """A URL without its password, for messages."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def load_study(name: str, storage: Any) -> Any:
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        import difflib

        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else (f" (studies there: {', '.join(known[:8])})" if known else
                                                              " (it holds no study at all: a damaged journal?)")
        raise UserError(f"no study {name!r} in that storage{hint}") from None


def list_local_studies(root: str | Path | None = None) -> list[Path]:
    base = studies_root(root)
    if not base.is_dir():
        return []
    return sorted((p for p in base.iterdir() if (p / JOURNAL).is_file()), key=lambda p: p.name)

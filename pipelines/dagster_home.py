"""Which Dagster instance ``cdcompact run`` uses, decided before anything slow starts.

$DAGSTER_HOME when it is set; otherwise ``.dagster_home`` in the cdcompact home (the
folder the configuration resolves from: $CDCOMPACT_HOME, else the checkout), as ``make
run`` does. The folder is created when missing, with the home's dagster.yaml copied in
when it has none (Dagster's defaults would drop the run queue's limits). Only the
standard library: the command line imports this before Dagster.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import MutableMapping
from pathlib import Path

#: The instance folder in the cdcompact home when DAGSTER_HOME is not set.
DEFAULT_FOLDER = ".dagster_home"
INSTANCE_FILE = "dagster.yaml"


def ensure_dagster_home(
    home: Path, environ: MutableMapping[str, str] | None = None
) -> tuple[Path, str]:
    """The instance folder, made ready, and a line saying which one it is and why; sets
    DAGSTER_HOME in ``environ`` (default ``os.environ``) when it was not set."""
    environ = os.environ if environ is None else environ
    given = environ.get("DAGSTER_HOME")
    if given:
        folder = Path(given).expanduser().resolve()
        why = "$DAGSTER_HOME"
    else:
        folder = home / DEFAULT_FOLDER
        why = "DAGSTER_HOME is not set: the default of the cdcompact home"
    folder.mkdir(parents=True, exist_ok=True)
    environ["DAGSTER_HOME"] = str(folder)
    instance_file = folder / INSTANCE_FILE
    if not instance_file.exists():
        source = home / INSTANCE_FILE
        if not source.is_file():
            source = Path(__file__).resolve().parents[1] / INSTANCE_FILE
        shutil.copyfile(source, instance_file)
        why += f"; {source} copied in"
    return folder, f"cdcompact: Dagster instance {folder} ({why})"

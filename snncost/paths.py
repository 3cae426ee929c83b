"""One check for "this path must be a readable file", with errors that name the path.

Checkpoints, run configs and profiles are all opened by path; each refusal
is one line starting with the path, in the caller's own error class.
"""

from __future__ import annotations

from pathlib import Path


def require_file(path: str | Path, noun: str, error: type[Exception]) -> Path:
    """``path`` as a :class:`Path` if it is an existing file, else ``error`` naming it.

    ``noun`` says what the file should be (``"checkpoint file"``, ``"config file"``).
    """
    path = Path(path)
    try:
        is_file, is_dir = path.is_file(), path.is_dir()
    except OSError as exc:  # e.g. a name too long for the file system
        raise error(f"{path}: cannot access the {noun}: {exc.strerror or exc}") from None
    if is_dir:
        raise error(f"{path}: is a directory, not a {noun}")
    if not is_file:
        raise error(f"{path}: no such {noun}")
    return path

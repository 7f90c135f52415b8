"""Where the runner may read and write, and how it writes: safe names, atomic numbered files.

Every path a workflow names is kept inside its folder (input, output, temp). A numbered output
(`prefix_00001_.png`) is written whole into a temp file in the same folder, then published under
the first free number with an exclusive create (`os.link`, which fails if the name exists; where
a file system has no hard links: `os.open(O_CREAT | O_EXCL)` claims the name and `os.replace`
moves the data in). So concurrent writers (threads, processes, other runs) never take the same
name, and a writer killed mid-save leaves no partial file under an output name. A writer killed
with SIGKILL can leave its hidden `.nst-partial-*` temp file; the next save into that folder
removes such files of dead processes.
"""
from __future__ import annotations

import errno
import os
import secrets
import time
from typing import BinaryIO, Callable

__all__ = ["inside", "resolve_input_file", "check_prefix", "save_image_path", "write_new_file", "PARTIAL_PREFIX"]

PARTIAL_PREFIX = ".nst-partial-"
STALE_PARTIAL_SECONDS = 600   # a temp file of a dead process this old is garbage (not a slow writer elsewhere)


def inside(base: str, path: str) -> bool:
    """True when `path` (symlinks resolved) lies in the folder `base`."""
    base, path = os.path.realpath(base), os.path.realpath(path)
    return os.path.commonpath((base, path)) == base


def resolve_input_file(name: str) -> str:
    """Path of an image name as ComfyUI reads it ("x.png", "sub/x.png", "x.png [output]").

    Raises ValueError for absolute names and names that leave their folder.
    """
    from .runtime import get_directory

    kind = "input"
    for suffix in ("output", "input", "temp"):
        if name.endswith(f"[{suffix}]"):
            kind, name = suffix, name[: -len(suffix) - 2].rstrip()
            break
    base = get_directory(kind)
    if not name or os.path.isabs(name) or os.path.splitdrive(name)[0]:
        raise ValueError(f"image name {name!r} must be a file name relative to the {kind} folder ({base})")
    path = os.path.join(base, name)
    if not inside(base, path):
        raise ValueError(f"image name {name!r} points outside the {kind} folder ({base})")
    return path


def _expand_vars(prefix: str, width: int, height: int) -> str:
    now = time.localtime()
    for key, value in (("%width%", width), ("%height%", height), ("%year%", now.tm_year),
                       ("%month%", f"{now.tm_mon:02}"), ("%day%", f"{now.tm_mday:02}"),
                       ("%hour%", f"{now.tm_hour:02}"), ("%minute%", f"{now.tm_min:02}"),
                       ("%second%", f"{now.tm_sec:02}")):
        prefix = prefix.replace(key, str(value))
    return prefix


def check_prefix(prefix: str, output_dir: str) -> tuple:
    """(folder, file name prefix, subfolder) of a filename_prefix; ValueError if it leaves `output_dir`."""
    if os.path.isabs(prefix) or os.path.splitdrive(prefix)[0] or prefix.startswith(("/", "\\")):
        raise ValueError(f"filename_prefix {prefix!r} is an absolute path; it must be relative "
                         f"to the output folder ({output_dir})")
    norm = os.path.normpath(prefix)
    subfolder, filename = os.path.dirname(norm), os.path.basename(norm)
    folder = os.path.join(output_dir, subfolder)
    if not inside(output_dir, folder) or filename in ("..", ""):
        raise ValueError(f"filename_prefix {prefix!r} points outside the output folder ({output_dir})")
    return folder, filename, subfolder


def save_image_path(prefix: str, output_dir: str, width: int = 0, height: int = 0) -> tuple:
    """ComfyUI's get_save_image_path: (folder, filename, next counter, subfolder), refusing escapes.

    The counter is where the search for a free name starts; `write_new_file` claims the name.
    """
    output_dir = os.path.realpath(output_dir)
    if "%" in prefix:
        prefix = _expand_vars(prefix, width, height)
    folder, filename, subfolder = check_prefix(prefix, output_dir)
    os.makedirs(folder, exist_ok=True)
    counter = 0
    for existing in os.listdir(folder):
        if existing.startswith(PARTIAL_PREFIX):
            _remove_if_stale(folder, existing)
            continue
        if not os.path.normcase(existing).startswith(os.path.normcase(f"{filename}_")):
            continue
        rest = existing[len(filename) + 1:]
        digits = rest.split("_")[0]
        if digits.isdigit() and rest[len(digits):].startswith("_"):
            counter = max(counter, int(digits))
    return folder, filename, counter + 1, subfolder


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # e.g. EPERM: it exists, owned by someone else
        return True
    return True


def _remove_if_stale(folder: str, name: str) -> None:
    """Remove a temp file left by a writer that was killed (its process is gone, the file is old)."""
    pid_text = name[len(PARTIAL_PREFIX):].split("-", 1)[0]
    if not pid_text.isdigit() or _pid_alive(int(pid_text)):
        return
    path = os.path.join(folder, name)
    try:
        if time.time() - os.stat(path).st_mtime > STALE_PARTIAL_SECONDS:
            os.unlink(path)
    except OSError:
        pass   # gone already, or not ours to remove


def _new_temp(folder: str) -> tuple:
    """(fd, path) of a new hidden temp file in `folder` (exclusive create; the umask applies)."""
    while True:
        path = os.path.join(folder, f"{PARTIAL_PREFIX}{os.getpid()}-{secrets.token_hex(6)}.tmp")
        try:
            return os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o666), path
        except FileExistsError:
            continue


def _publish(temp: str, path: str) -> bool:
    """Give the finished `temp` the name `path` unless that name exists; True when it did."""
    try:
        os.link(temp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK,
                             errno.ENOSYS, errno.EACCES):
            raise
    try:   # no hard links here: claim the name exclusively, then move the data in
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except FileExistsError:
        return False
    os.close(fd)
    os.replace(temp, path)
    return True


def write_new_file(folder: str, name_for: Callable[[int], str], write: Callable[[BinaryIO], None],
                   first: int = 1, max_tries: int = 100_000) -> tuple:
    """Write a file under the first free name `name_for(n)`, n = first, first + 1, ...; (path, n).

    `write(fileobj)` produces the whole content before any name is taken, so no output name
    ever holds a partial file, and no other writer's file is overwritten.
    """
    fd, temp = _new_temp(folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        for n in range(first, first + max_tries):
            path = os.path.join(folder, name_for(n))
            if _publish(temp, path):
                return path, n
        raise FileExistsError(f"no free file name in {folder} from {name_for(first)} on "
                              f"({max_tries} names tried)")
    finally:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass

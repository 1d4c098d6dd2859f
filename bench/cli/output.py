"""The one writer of the files a user names on the command line (check's --baseline, history's
--plot): their paths are checked before any work, so a command never does minutes of work and
then fails to write; and the line it prints names the file it wrote, never another.

A path is refused, in one line, when it is a folder, when its folder does not exist or cannot be
written, or when its format (its extension, for a plot) is not one the writer knows.
"""

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from bench.errors import UsageError
from bench.results.folder import write_json


@dataclass(frozen=True)
class OutputFile:
    """A file to write: where, what it is (for messages) and the extensions it may have (without
    the dot, lowercase; empty: any)."""

    path: Path
    what: str
    formats: tuple = ()

    @property
    def format(self) -> str:
        """The path's extension, lowercase and without the dot: the format it is written in."""
        return self.path.suffix[1:].lower()

    def checked(self) -> "OutputFile":
        """This file, once it is known that it can be written; a UsageError naming why not."""
        if _is(self.path, os.path.isdir):
            raise self.refusal("it is a folder; name a file")
        if self.formats and self.format not in self.formats:
            why = f"no format is named .{self.format}" if self.format else "it has no extension"
            raise self.refusal(f"{why}; end it in one of .{', .'.join(self.formats)}")
        folder = self.path.parent
        if not _is(folder, os.path.isdir):
            exists = _is(folder, os.path.exists)
            raise self.refusal(f"{folder} is not a folder" if exists else f"no folder {folder}")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise self.refusal(f"{folder} is not writable")
        if _is(self.path, os.path.exists) and not os.access(self.path, os.W_OK):
            raise self.refusal("it is not writable")
        return self

    def refusal(self, why: str) -> UsageError:
        return UsageError(f"cannot write {self.what} {self.path}: {why}")


def _is(path: Path, test) -> bool:
    """``test(path)``; False for a path the system cannot even look up (a name too long)."""
    try:
        return test(path)
    except (OSError, ValueError):
        return False


def write_json_file(output: OutputFile, data: dict) -> Path:
    """``data`` as JSON at the checked ``output``, whole or not at all; the path written."""
    write_json(output.checked().path, data)
    return output.path


def save_figure(output: OutputFile, figure) -> Path:
    """A matplotlib ``figure`` at the checked ``output``, whole or not at all, in the format its
    extension names: the file is written where it is named, never with an extension added. A
    format matplotlib lists but cannot write here (pgf without LaTeX) is refused in one line.
    Returns the path written."""
    path = output.checked().path
    partial = path.with_name(f"{path.name}.partial")
    try:
        figure.savefig(partial, format=output.format, dpi=110)
        os.replace(partial, path)
    except (OSError, ValueError, RuntimeError) as error:
        with contextlib.suppress(OSError):  # one that cannot be removed stays, as the write left it
            partial.unlink(missing_ok=True)
        why = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise output.refusal(" ".join(str(why).split())) from None
    return path


def figure_formats(figure) -> tuple:
    """The extensions matplotlib writes a figure in, from its own list."""
    return tuple(sorted(figure.canvas.get_supported_filetypes()))

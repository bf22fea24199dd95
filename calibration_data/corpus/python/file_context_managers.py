"""Context managers for safe file handling."""
import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, os.PathLike]


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str = "utf-8") -> Iterator:
    """Write to a temporary file and rename it over ``path`` on success.

    Readers never observe a half-written file, and if the block raises the
    original file is left untouched.
    """
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    kwargs = {} if "b" in mode else {"encoding": encoding}
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def working_directory(path: PathLike) -> Iterator[Path]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield Path(path)
    finally:
        os.chdir(previous)


class FileLock:
    """Very small advisory lock based on exclusive file creation."""

    def __init__(self, path: PathLike, timeout: float = 10.0, poll: float = 0.05):
        self.path = Path(path)
        self.timeout = timeout
        self.poll = poll
        self._held = False

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"could not lock {self.path} within {self.timeout}s")
                time.sleep(self.poll)
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            self._held = True
            return

    def release(self) -> None:
        if self._held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._held = False

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.release()
        return False


@contextlib.contextmanager
def scratch_dir(keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="scratch-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    with scratch_dir() as tmp:
        target = tmp / "settings.json"
        with atomic_write(target) as fh:
            fh.write('{"theme": "dark"}\n')
        try:
            with atomic_write(target) as fh:
                fh.write("{broken")
                raise RuntimeError("simulated crash")
        except RuntimeError:
            pass
        print(target.read_text().strip())
        with FileLock(tmp / "job.lock", timeout=1):
            with working_directory(tmp):
                print(sorted(os.listdir(".")))

"""One way to run a per-image function over many images: in chunks, over worker processes, with a progress bar."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence, TypeVar

from imgcls.console import progress_bar

T = TypeVar("T")
R = TypeVar("R")


def _apply_chunk(args):
    fn, items = args
    return [fn(x) for x in items]


def chunked_map(fn: Callable[[T], R], items: Sequence[T], workers: int = 1, what: str | None = None,
                chunk: int = 64) -> Iterator[R]:
    """Yield fn(item) for every item, in order. `fn` must be a module-level function (it is pickled) when
    workers > 1; chunks of `chunk` items go to `workers` processes, results stream back as chunks finish.
    `what`: progress-bar label (silenced by --quiet)."""
    chunks = [(fn, items[i:i + chunk]) for i in range(0, len(items), chunk)]
    with progress_bar(what, len(items)) as advance:
        if workers and workers > 1 and len(chunks) > 1:
            from concurrent.futures import ProcessPoolExecutor
            with ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as ex:
                for res in ex.map(_apply_chunk, chunks):
                    advance(len(res))
                    yield from res
        else:
            for c in chunks:
                res = _apply_chunk(c)
                advance(len(res))
                yield from res

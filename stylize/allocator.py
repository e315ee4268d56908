"""glibc's malloc, set for a process that paints large pictures on a CPU (bench/allocator.py measures it)."""
import ctypes
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_ARENA_MAX = -1, -2, -8  # mallopt parameters, from glibc's malloc.h
KEEP_BYTES = 2**30


def tune_allocator() -> bool:
    """One arena for every thread, which keeps up to KEEP_BYTES of freed memory and grows by as much at a time.

    A render allocates and frees maps of tens of MB. By default glibc gives each thread (Gradio serves requests from
    worker threads) an arena of its own, whose heaps are capped at 64 MB, and gives freed memory back to the kernel, so
    every render faults its maps back in, page by page, zeroed: 2.3 M page faults for a few quality-model renders at 1024
    px, against 0.3 M with this. Call it before threads start; what is kept stays within the peak a render reached.
    False where the C library is not glibc: nothing changed."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries
        return False
    return all(mallopt(option, value) == 1 for option, value in
               ((M_ARENA_MAX, 1), (M_TRIM_THRESHOLD, KEEP_BYTES), (M_TOP_PAD, KEEP_BYTES)))

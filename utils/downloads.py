"""A time limit for dataset downloads, so an unreachable server fails instead of hanging."""

import contextlib
import socket

DOWNLOAD_TIMEOUT_S = 60


@contextlib.contextmanager
def download_timeout(seconds=DOWNLOAD_TIMEOUT_S):
    """Sets the default socket timeout inside the block and restores the previous one after."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)

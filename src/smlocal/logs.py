"""Logging setup for the entry points: the built-ins' line format, ``[MM/DD/YYYY HH:MM:SS INFO <thread>] message``."""
from __future__ import annotations

import logging
import sys
from typing import TextIO

LOG_FORMAT = "[%(asctime)s %(levelname)s %(thread)d] %(message)s"
DATE_FORMAT = "%m/%d/%Y %H:%M:%S"
LOGGER_NAME = "smlocal"


def setup_logging(level: str = "info", stream: TextIO | None = None) -> logging.Logger:
    """Configure the ``smlocal`` logger with the built-ins' line format (called by entry points only)."""
    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, DATE_FORMAT))
    logger.handlers[:] = [handler]
    logger.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    logger.propagate = False
    return logger


def apply_log_level(logger: logging.Logger, name: str) -> None:
    """The ``_log_level`` hyperparameter (debug/info/warning/error/critical): the job's level from here on."""
    level = getattr(logging, str(name).upper(), None)
    if isinstance(level, int):
        logger.setLevel(level)

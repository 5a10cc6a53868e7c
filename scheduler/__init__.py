"""recsched: schedule Tencent Cloud recordings on time, never twice."""

__version__ = "0.1.0"  # the only place the version is written (pyproject reads it)

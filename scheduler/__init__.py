"""recsched: schedule Tencent Cloud recordings on time, never twice."""

__version__ = "0.1.0"

"""Values every layer shares: China Standard Time (the zone of Tencent's wire formats) and the
Tencent limits the planner and the send rules obey. No I/O, no framework.

[C] confirmed in Tencent's documentation; see README "How calls are sent".
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

CST = ZoneInfo("Asia/Shanghai")
#: Tencent's hard limit for a real-time (task_sub_type=1) task; longer end_times are clipped. [C]
REALTIME_MAX_CHUNK = timedelta(minutes=30)
#: Live_Tape_Start scheduled mode: end_time - start_time <= 1 day. [C]
SCHEDULED_MAX_CHUNK = timedelta(days=1)
#: A second call for the same target inside this window may create a duplicate task. [C]
DUPLICATE_WINDOW = timedelta(seconds=3)

"""ts-isr's prerm: take out the cron lines threatstop-setup wrote for this package; keep every other line.

Run by the package's own interpreter: ``/opt/venvs/ts-isr/bin/python THIS /opt/venvs/ts-isr/``.
"""

import sys

from crontab import CronTab

tab = CronTab(user=True)
ours = [job for job in tab if job.comment.startswith("ts_isr ") and sys.argv[1] in job.command]
for job in ours:
    tab.remove(job)
if ours:
    tab.write()
    print(f"ts-isr: removed {len(ours)} cron lines of threatstop-setup")

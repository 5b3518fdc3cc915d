"""proxmox-backup's keep rules (PruneBackups): a backup kept by one rule is not counted by the next; protected
backups are kept and never counted. A port of PBS's mark_selections."""

import time

RULES = (
    ("keep_last", "keep-last", lambda t, name: name),
    ("keep_hourly", "keep-hourly", lambda t, name: time.strftime("%Y/%m/%d/%H", time.localtime(t))),
    ("keep_daily", "keep-daily", lambda t, name: time.strftime("%Y/%m/%d", time.localtime(t))),
    ("keep_weekly", "keep-weekly", lambda t, name: time.strftime("%G/%V", time.localtime(t))),
    ("keep_monthly", "keep-monthly", lambda t, name: time.strftime("%Y/%m", time.localtime(t))),
    ("keep_yearly", "keep-yearly", lambda t, name: time.strftime("%Y", time.localtime(t))),
)


def decide(backups, policy) -> dict[str, tuple[bool, str]]:
    """backups: (name, time, protected) of one guest. Returns name -> (keep, reason)."""
    ordered = sorted(backups, key=lambda b: b[1], reverse=True)
    marks: dict[str, tuple[bool, str]] = {}
    for name, _, protected in ordered:
        if protected:
            marks[name] = (True, "protected")
    if all(getattr(policy, field) == 0 for field, _, _ in RULES):
        for name, _, _ in ordered:
            marks.setdefault(name, (True, "keep-all"))
        return marks
    for field, reason, select in RULES:
        keep = getattr(policy, field)
        if keep == 0:
            continue
        already = {select(t, n) for n, t, _ in ordered if marks.get(n, (False, ""))[0] and marks[n][1] != "protected"}
        included = set()
        for name, when, _ in ordered:
            if name in marks:
                continue
            period = select(when, name)
            if period in already:
                continue
            if period not in included:
                if len(included) >= keep:
                    break
                included.add(period)
                marks[name] = (True, reason)
            else:
                marks[name] = (False, "removed")
    for name, _, _ in ordered:
        marks.setdefault(name, (False, "removed"))
    return marks

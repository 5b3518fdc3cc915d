using System.Globalization;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Provider;

/// <summary>
/// The keep rules of proxmox-backup and borg (repository.proto PruneBackups), for the backups of one guest: protected
/// backups are kept and not counted; then keep-last, -hourly, -daily, -weekly (ISO weeks), -monthly and -yearly each
/// keep the newest backup of each of their N newest periods, in local time; a backup one rule has decided on (kept,
/// or passed over as a second backup of a period it kept) is skipped by the later rules, as in proxmox-backup's
/// mark_selections. What no rule keeps is removed. A policy of all zeros keeps everything.
/// </summary>
public static class RetentionPlanner
{
    public static IReadOnlyList<RetentionDecision<TArchive>> Plan<TArchive>(IEnumerable<RetentionCandidate<TArchive>> candidates,
        RetentionPolicy policy, TimeZoneInfo zone)
    {
        ArgumentNullException.ThrowIfNull(policy);
        List<RetentionCandidate<TArchive>> newestFirst = candidates
            .OrderByDescending(c => c.BackupTime)
            .ThenByDescending(c => c.Name, StringComparer.Ordinal)
            .ToList();
        bool keepAll = policy is { KeepLast: 0, KeepHourly: 0, KeepDaily: 0, KeepWeekly: 0, KeepMonthly: 0, KeepYearly: 0 };
        var marks = new Dictionary<RetentionCandidate<TArchive>, (bool Keep, string Reason)>();
        foreach (RetentionCandidate<TArchive> candidate in newestFirst.Where(c => c.Protected))
        {
            marks[candidate] = (true, "protected");
        }

        Mark(newestFirst, marks, policy.KeepLast, "keep-last", c => c.Name);
        Mark(newestFirst, marks, policy.KeepHourly, "keep-hourly", c => Local(c, zone).ToString("yyyy/MM/dd/HH", CultureInfo.InvariantCulture));
        Mark(newestFirst, marks, policy.KeepDaily, "keep-daily", c => Local(c, zone).ToString("yyyy/MM/dd", CultureInfo.InvariantCulture));
        Mark(newestFirst, marks, policy.KeepWeekly, "keep-weekly", c =>
        {
            DateTime local = Local(c, zone);
            return string.Create(CultureInfo.InvariantCulture, $"{ISOWeek.GetYear(local)}/{ISOWeek.GetWeekOfYear(local)}");
        });
        Mark(newestFirst, marks, policy.KeepMonthly, "keep-monthly", c => Local(c, zone).ToString("yyyy/MM", CultureInfo.InvariantCulture));
        Mark(newestFirst, marks, policy.KeepYearly, "keep-yearly", c => Local(c, zone).ToString("yyyy", CultureInfo.InvariantCulture));

        return newestFirst.Select(c => marks.TryGetValue(c, out var mark)
                ? new RetentionDecision<TArchive>(c.Archive, c.Name, mark.Keep, mark.Keep ? mark.Reason : "removed")
                : new RetentionDecision<TArchive>(c.Archive, c.Name, keepAll, keepAll ? "keep-all" : "removed"))
            .ToList();
    }

    private static void Mark<TArchive>(List<RetentionCandidate<TArchive>> newestFirst,
        Dictionary<RetentionCandidate<TArchive>, (bool Keep, string Reason)> marks, uint keep, string reason,
        Func<RetentionCandidate<TArchive>, string> period)
    {
        if (keep == 0)
        {
            return;
        }
        // Periods an earlier rule already has a kept backup in are not counted again.
        var alreadyIncluded = new HashSet<string>(
            newestFirst.Where(c => marks.TryGetValue(c, out var m) && m.Keep && m.Reason != "protected").Select(period),
            StringComparer.Ordinal);
        var included = new HashSet<string>(StringComparer.Ordinal);
        foreach (RetentionCandidate<TArchive> candidate in newestFirst)
        {
            if (marks.ContainsKey(candidate))
            {
                continue;
            }
            string id = period(candidate);
            if (alreadyIncluded.Contains(id))
            {
                continue;
            }
            if (!included.Contains(id))
            {
                if (included.Count >= keep)
                {
                    break;
                }
                included.Add(id);
                marks[candidate] = (true, reason);
            }
            else
            {
                marks[candidate] = (false, "removed");
            }
        }
    }

    private static DateTime Local<TArchive>(RetentionCandidate<TArchive> candidate, TimeZoneInfo zone) =>
        TimeZoneInfo.ConvertTime(candidate.BackupTime, zone).DateTime;
}

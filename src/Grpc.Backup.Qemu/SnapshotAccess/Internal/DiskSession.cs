namespace Grpc.Backup.Qemu.Internal;

/// <summary>One disk's names, decisions and progress within one backup.</summary>
internal sealed class DiskSession
{
    public DiskSession(SnapshotDisk disk, int index, string backupId, SnapshotAccessOptions options)
    {
        Disk = disk;
        BitmapName = options.GetBitmapName(disk.DeviceName);
        BackgroundBitmapName = BitmapName + "-bg";

        // The backup id makes every name unique per backup, so a leftover from a crashed run never
        // collides. Node names are short and device-independent: QEMU allows 31 characters from a small
        // alphabet, and the device name can be anything.
        string prefix = $"gb{backupId}-";
        FleeceNode = $"{prefix}fl{index}";
        FleeceFileNode = $"{prefix}ff{index}";
        CbwNode = $"{prefix}cbw{index}";
        SnapshotNode = $"{prefix}snap{index}";
        ExportId = $"{prefix}exp{index}";
        ThrottleNode = $"{prefix}thr{index}";
        ThrottleGroupId = $"{prefix}tg{index}";
        FleecingPath = Path.Combine(options.FleecingDirectory, $"fleece-{backupId}-{index}.raw");

    }

    public SnapshotDisk Disk { get; }

    public string DeviceName => Disk.DeviceName;

    public string FormatNode => Disk.FormatNode;

    public string FilterNode => Disk.FilterNode;

    /// <summary>The stable bitmap: the base of the next incremental backup.</summary>
    public string BitmapName { get; }

    /// <summary>
    /// Records writes from just before the instant until the provider's commit is known: while the stable bitmap is
    /// frozen (Reuse), or before it exists (New). Deterministic (not per
    /// backup) so that setup recognises and recovers one left behind by a crashed run.
    /// </summary>
    public string BackgroundBitmapName { get; }

    public string FleeceNode { get; }

    public string FleeceFileNode { get; }

    public string CbwNode { get; }

    public string SnapshotNode { get; }

    public string ExportId { get; }

    public string FleecingPath { get; }

    /// <summary>Throttle filter over the snapshot-access node when the job has a bandwidth limit.</summary>
    public string ThrottleNode { get; }

    /// <summary>The throttle group (QOM object) of <see cref="ThrottleNode"/>, one per disk and backup.</summary>
    public string ThrottleGroupId { get; }

    /// <summary>The node the exports read: the throttle filter when there is one, else the snapshot-access node.</summary>
    public string ExportedNode => Progress.ThrottleNodeAdded ? ThrottleNode : SnapshotNode;

    public ulong SizeBytes { get; set; }

    /// <summary>The stable bitmap's granularity; the background bitmap gets the same, so merging is exact.</summary>
    public long Granularity { get; set; }

    public BitmapPlan Plan { get; set; } = new(BitmapOutcome.None, RemoveExisting: false);

    public DiskProgress Progress { get; } = new();
}

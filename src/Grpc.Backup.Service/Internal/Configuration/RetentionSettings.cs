namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>The keep rules of a job (proxmox-backup and borg semantics, applied by the provider's PruneBackups).</summary>
internal sealed record RetentionSettings(uint KeepLast, uint KeepHourly, uint KeepDaily, uint KeepWeekly, uint KeepMonthly, uint KeepYearly)
{
    public static RetentionSettings None { get; } = new(0, 0, 0, 0, 0, 0);

    /// <summary>All zero keeps everything, so nothing is pruned.</summary>
    public bool KeepsEverything => this == None;

    public Protocol.V1.RetentionPolicy ToPolicy() => new()
    {
        KeepLast = KeepLast, KeepHourly = KeepHourly, KeepDaily = KeepDaily,
        KeepWeekly = KeepWeekly, KeepMonthly = KeepMonthly, KeepYearly = KeepYearly,
    };
}

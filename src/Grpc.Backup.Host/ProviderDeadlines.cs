namespace Grpc.Backup.Host;

/// <summary>
/// The deadlines the contract gives calls whose work grows with the data (backup.proto, restore.proto,
/// repository.proto say which); every other unary call gets <see cref="ProviderConnectionOptions.UnaryDeadline"/>.
/// </summary>
public static class ProviderDeadlines
{
    /// <summary>
    /// RestoreVmVolumeInit (a provider may compose or extract the whole volume before it answers) and PruneBackups
    /// (removal is linear in the backups removed, and a removed base may have to be flattened into its successor).
    /// </summary>
    public static readonly TimeSpan Preparation = TimeSpan.FromMinutes(30);

    /// <summary>BackupCleanup (with the log hand-off before it) and JobCleanup: the contract's 2 minutes (backup.proto).</summary>
    public static readonly TimeSpan Cleanup = TimeSpan.FromMinutes(2);

    /// <summary>The absolute deadline for a call started now.</summary>
    public static DateTime FromNow(TimeSpan timeout) => DateTime.UtcNow + timeout;
}

namespace Grpc.Backup.Service.Internal.Catalog;

/// <summary>
/// What a crashed backup may have left behind, recorded before it starts: enough to reach the guest (a VM's QMP socket
/// and disks as they were configured then; a container's cgroup), the directories it used, and the provider that must
/// hear BackupCleanup.
/// </summary>
internal sealed record JournalEntry(string BackupId, string JobId, string TaskId, string Storage, string GuestId, string QmpSocket,
    string? AgentSocket, IReadOnlyList<JournalDisk> Disks, string FleecingDirectory, string RuntimeDirectory, DateTime Started,
    bool Container = false, string? Cgroup = null, string? TemporaryDirectory = null);


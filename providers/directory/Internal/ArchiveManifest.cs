using System.Text.Json.Serialization;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// <c>manifest.json</c> of one archive: the single source of truth about it. Written atomically, so a reader sees the
/// old or the new version, never half of one. Only archives with <see cref="Complete"/> set are backups.
/// </summary>
internal sealed class ArchiveManifest
{
    public const int CurrentFormatVersion = 1;
    public const string GuestTypeVm = "vm";
    public const string GuestTypeContainer = "container";

    public int FormatVersion { get; init; } = CurrentFormatVersion;

    /// <summary>The host's backup_id, so a repeated BackupInit or BackupCleanup finds the archive after a restart.</summary>
    public required string BackupId { get; init; }

    public required string GuestId { get; init; }

    public required string GuestType { get; init; }

    public required DateTimeOffset BackupTime { get; init; }

    public string GuestName { get; init; } = "";

    public bool Complete { get; set; }

    public DateTimeOffset? CompletedAt { get; set; }

    public bool Protected { get; set; }

    public string Notes { get; set; } = "";

    public bool HasFirewallConfig { get; set; }

    public string? Consistency { get; set; }

    public List<ManifestVolume> Volumes { get; init; } = [];

    [JsonIgnore]
    public long RestoredSizeBytes => Volumes.Sum(v => v.SizeBytes);

    [JsonIgnore]
    public bool IsIncremental => Volumes.Any(v => v.Parent is not null);

    public ManifestVolume? FindVolume(string device) => Volumes.Find(v => v.Device == device);
}

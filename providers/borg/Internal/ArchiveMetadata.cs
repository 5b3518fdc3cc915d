namespace Grpc.Backup.Providers.Borg.Internal;

/// <summary>
/// What the provider knows about an archive when it starts writing it. It travels as the borg archive's comment
/// (JSON), so the repository describes itself without the provider's catalog, and the catalog keeps a copy.
/// </summary>
internal sealed class ArchiveMetadata
{
    public const int CurrentFormat = 1;
    public const string GuestTypeVm = "vm";
    public const string GuestTypeContainer = "container";

    public int Format { get; set; } = CurrentFormat;

    public string BackupId { get; set; } = "";

    public string GuestId { get; set; } = "";

    public string GuestType { get; set; } = GuestTypeVm;

    public string GuestName { get; set; } = "";

    public DateTimeOffset BackupTime { get; set; }

    public string Consistency { get; set; } = "";

    /// <summary>The guest configuration, byte-exact (base64 in JSON).</summary>
    public byte[] GuestConfig { get; set; } = [];

    /// <summary>The firewall configuration, byte-exact; null when the host sent none.</summary>
    // Omitted when null: System.Text.Json writes a null byte[] as "", which reads back as an empty, present config
    // (grpc-backup-conformance caught ArchiveGetFirewallConfig answering present=true for backups without one).
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public byte[]? FirewallConfig { get; set; }

    public List<VolumeMetadata> Volumes { get; set; } = [];

    public VolumeMetadata? FindVolume(string device) => Volumes.FirstOrDefault(v => v.Device == device);
}

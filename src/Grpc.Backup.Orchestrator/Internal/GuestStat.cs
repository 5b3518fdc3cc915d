using System.Globalization;
using Grpc.Backup.Containers;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>One <c>lstatns</c> result as guestfish prints it (<c>st_mode: 33188</c> lines), numbers only.</summary>
internal sealed record GuestStat(long Mode, long Uid, long Gid, long Size, long ModificationTime)
{
    private const long TypeMask = 0xF000;

    public ArchiveEntryKind Kind => (Mode & TypeMask) switch
    {
        0x4000 => ArchiveEntryKind.Directory,
        0xA000 => ArchiveEntryKind.Symlink,
        0x1000 => ArchiveEntryKind.Fifo,
        0x2000 => ArchiveEntryKind.CharacterDevice,
        0x6000 => ArchiveEntryKind.BlockDevice,
        _ => ArchiveEntryKind.File,
    };

    /// <summary>The modification time, held to what a date can be (the guest's data may say anything).</summary>
    public DateTimeOffset ModificationTimeOffset =>
        DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(ModificationTime, 0, DateTimeOffset.MaxValue.ToUnixTimeSeconds()));

    public UnixFileMode Permissions => (UnixFileMode)(Mode & 0xFFF);

    /// <summary>Every block in <paramref name="output"/> (each begins with <c>st_dev</c>), in order.</summary>
    public static List<GuestStat> ParseAll(string output)
    {
        var stats = new List<GuestStat>();
        Dictionary<string, long>? fields = null;
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || !long.TryParse(line[(colon + 1)..].Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
            {
                throw new BackupException("the appliance's lstatns output is not understood");
            }
            string name = line[..colon];
            if (name == "st_dev")
            {
                Add(stats, fields);
                fields = [];
            }
            (fields ?? throw new BackupException("the appliance's lstatns output is not understood"))[name] = value;
        }
        Add(stats, fields);
        return stats;
    }

    private static void Add(List<GuestStat> stats, Dictionary<string, long>? fields)
    {
        if (fields is null)
        {
            return;
        }
        long Field(string name) => fields.TryGetValue(name, out long v) ? v : throw new BackupException($"the appliance's lstatns output has no {name}");
        stats.Add(new GuestStat(Field("st_mode"), Field("st_uid"), Field("st_gid"), Math.Max(0, Field("st_size")), Field("st_mtime_sec")));
    }
}

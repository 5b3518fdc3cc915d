using System.Globalization;
using System.Text;

namespace Grpc.Backup.Containers;

/// <summary>
/// A container's uid/gid map (LXC <c>lxc.idmap</c>): which host id each container id is. An empty map is a privileged
/// container, whose ids are the host's own. Parsing is strict because the map decides which host files the container's
/// root can touch: a typo must fail loudly, not map root to the wrong place.
/// </summary>
public sealed class IdMap
{
    // The kernel accepts at most this many lines in one uid_map/gid_map write (since Linux 4.15).
    private const int MaxRangesPerKind = 340;

    // (uid_t)-1 is "no id" for chown and the kernel never maps it.
    private const ulong IdLimit = uint.MaxValue;

    private IdMap(IReadOnlyList<IdMapRange> ranges) => Ranges = ranges;

    /// <summary>No map: the container runs with host ids (privileged).</summary>
    public static IdMap Privileged { get; } = new([]);

    /// <summary>All ranges, users first, each kind in the order given.</summary>
    public IReadOnlyList<IdMapRange> Ranges { get; }

    /// <summary>
    /// True for a privileged container: no map at all, or a map under which the container's root is host root (uid or
    /// gid 0). Such a container's files are host files and it is backed up as host root (as Proxmox does).
    /// </summary>
    public bool IsPrivileged => Ranges.Count == 0 || RootHostUid == 0 || RootHostGid == 0;

    /// <summary>The host uid of the container's root (0 when there is no map).</summary>
    public uint RootHostUid => Ranges.Count == 0 ? 0 : MapToHost(IdKind.User, 0);

    /// <summary>The host gid of the container's root (0 when there is no map).</summary>
    public uint RootHostGid => Ranges.Count == 0 ? 0 : MapToHost(IdKind.Group, 0);

    /// <summary>The usual unprivileged map: <c>u 0 <paramref name="hostBase"/> <paramref name="count"/></c> and the same for groups.</summary>
    public static IdMap CreateDefault(uint hostBase = 100000, uint count = 65536) =>
        FromRanges([new IdMapRange(IdKind.User, 0, hostBase, count), new IdMapRange(IdKind.Group, 0, hostBase, count)]);

    /// <summary>
    /// Parses map lines <c>u|g CONTAINER HOST COUNT</c>, optionally written as Proxmox/LXC config lines
    /// (<c>lxc.idmap: u 0 100000 65536</c> or <c>lxc.idmap = ...</c>). Blank lines and <c>#</c> comments are skipped.
    /// </summary>
    /// <exception cref="FormatException">A line is malformed or the ranges are inconsistent; the message names the line.</exception>
    public static IdMap Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Parse(text.Split('\n'));
    }

    /// <inheritdoc cref="Parse(string)"/>
    public static IdMap Parse(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var ranges = new List<IdMapRange>();
        int number = 0;
        foreach (string raw in lines)
        {
            number++;
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            ranges.Add(ParseLine(StripConfigKey(line), number, raw));
        }
        return FromRanges(ranges);
    }

    /// <summary>Builds a map from ranges, with the same checks as <see cref="Parse(string)"/>.</summary>
    /// <exception cref="FormatException">The ranges are inconsistent.</exception>
    public static IdMap FromRanges(IEnumerable<IdMapRange> ranges)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        var users = new List<IdMapRange>();
        var groups = new List<IdMapRange>();
        foreach (IdMapRange range in ranges)
        {
            CheckRange(range);
            (range.Kind == IdKind.User ? users : groups).Add(range);
        }
        if (users.Count == 0 && groups.Count == 0)
        {
            return Privileged;
        }
        // A container with only one kind mapped would run with unmapped (overflow) ids of the other kind: LXC refuses it too.
        if (users.Count == 0 || groups.Count == 0)
        {
            throw new FormatException($"id map has {(users.Count == 0 ? "group" : "user")} ranges but no {(users.Count == 0 ? "user (u)" : "group (g)")} ranges; both are needed");
        }
        CheckKind(users);
        CheckKind(groups);
        return new IdMap([.. users, .. groups]);
    }

    /// <summary>The host id of container id <paramref name="containerId"/>, if the map covers it (identity without a map).</summary>
    public bool TryMapToHost(IdKind kind, uint containerId, out uint hostId)
    {
        if (Ranges.Count == 0)
        {
            hostId = containerId;
            return true;
        }
        foreach (IdMapRange range in Ranges)
        {
            if (range.Kind == kind && range.ContainsContainerId(containerId))
            {
                hostId = range.HostId + (containerId - range.ContainerId);
                return true;
            }
        }
        hostId = 0;
        return false;
    }

    /// <summary>The container id that host id <paramref name="hostId"/> is, if the map covers it (identity without a map).</summary>
    public bool TryMapToContainer(IdKind kind, uint hostId, out uint containerId)
    {
        if (Ranges.Count == 0)
        {
            containerId = hostId;
            return true;
        }
        foreach (IdMapRange range in Ranges)
        {
            if (range.Kind == kind && range.ContainsHostId(hostId))
            {
                containerId = range.ContainerId + (hostId - range.HostId);
                return true;
            }
        }
        containerId = 0;
        return false;
    }

    /// <summary>The host id of a container id.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The map does not cover <paramref name="containerId"/>.</exception>
    public uint MapToHost(IdKind kind, uint containerId) =>
        TryMapToHost(kind, containerId, out uint hostId)
            ? hostId
            : throw new ArgumentOutOfRangeException(nameof(containerId), containerId, $"container {Describe(kind)} {containerId} is not covered by the id map ({this})");

    /// <summary>The container id of a host id.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The map does not cover <paramref name="hostId"/>.</exception>
    public uint MapToContainer(IdKind kind, uint hostId) =>
        TryMapToContainer(kind, hostId, out uint containerId)
            ? containerId
            : throw new ArgumentOutOfRangeException(nameof(hostId), hostId, $"host {Describe(kind)} {hostId} is not covered by the id map ({this})");

    /// <summary>The text the kernel expects in <c>/proc/PID/uid_map</c> (users) or <c>gid_map</c> (groups).</summary>
    internal string ToProcMapText(IdKind kind)
    {
        var text = new StringBuilder();
        foreach (IdMapRange range in Ranges)
        {
            if (range.Kind == kind)
            {
                text.Append(CultureInfo.InvariantCulture, $"{range.ContainerId} {range.HostId} {range.Count}\n");
            }
        }
        return text.ToString();
    }

    public override string ToString() => Ranges.Count == 0 ? "none (privileged)" : string.Join("; ", Ranges);

    private static string Describe(IdKind kind) => kind == IdKind.User ? "uid" : "gid";

    private static string StripConfigKey(string line)
    {
        const string Key = "lxc.idmap";
        if (!line.StartsWith(Key, StringComparison.Ordinal))
        {
            return line;
        }
        string rest = line[Key.Length..].TrimStart();
        return rest.Length > 0 && (rest[0] == ':' || rest[0] == '=') ? rest[1..].Trim() : line;
    }

    private static IdMapRange ParseLine(string line, int number, string raw)
    {
        string[] fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length != 4)
        {
            throw new FormatException($"id map line {number} '{raw.Trim()}': expected 'u|g CONTAINER-ID HOST-ID COUNT', got {fields.Length} fields");
        }
        IdKind kind = fields[0] switch
        {
            "u" => IdKind.User,
            "g" => IdKind.Group,
            _ => throw new FormatException($"id map line {number} '{raw.Trim()}': kind must be 'u' or 'g', not '{fields[0]}'"),
        };
        return new IdMapRange(kind, ParseId(fields[1], "container id", number, raw), ParseId(fields[2], "host id", number, raw),
            ParseId(fields[3], "count", number, raw));
    }

    private static uint ParseId(string field, string what, int number, string raw)
    {
        // Digits only: uint.Parse would also take "+5", and " 5" would hide a split mistake.
        if (field.Length == 0 || field.Length > 10 || !field.All(char.IsAsciiDigit)
            || !uint.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out uint value))
        {
            throw new FormatException($"id map line {number} '{raw.Trim()}': {what} '{field}' is not an unsigned 32-bit decimal number");
        }
        return value;
    }

    private static void CheckRange(IdMapRange range)
    {
        if (range.Count == 0)
        {
            throw new FormatException($"id map range '{range}': count must be at least 1");
        }
        if ((ulong)range.ContainerId + range.Count > IdLimit || (ulong)range.HostId + range.Count > IdLimit)
        {
            throw new FormatException($"id map range '{range}' runs past the largest id {IdLimit - 1}");
        }
    }

    private static void CheckKind(List<IdMapRange> ranges)
    {
        if (ranges.Count > MaxRangesPerKind)
        {
            throw new FormatException($"id map has {ranges.Count} {Describe(ranges[0].Kind)} ranges; the kernel accepts at most {MaxRangesPerKind}");
        }
        // The kernel refuses overlapping ranges on either side: an id must map one way only.
        for (int i = 0; i < ranges.Count; i++)
        {
            for (int j = i + 1; j < ranges.Count; j++)
            {
                if (Overlap(ranges[i].ContainerId, ranges[j].ContainerId, ranges[i].Count, ranges[j].Count))
                {
                    throw new FormatException($"id map ranges '{ranges[i]}' and '{ranges[j]}' overlap on the container side");
                }
                if (Overlap(ranges[i].HostId, ranges[j].HostId, ranges[i].Count, ranges[j].Count))
                {
                    throw new FormatException($"id map ranges '{ranges[i]}' and '{ranges[j]}' overlap on the host side");
                }
            }
        }
        if (!ranges.Any(r => r.ContainsContainerId(0)))
        {
            throw new FormatException($"id map does not map container {Describe(ranges[0].Kind)} 0 (root); the container's root must have a host id");
        }
    }

    private static bool Overlap(uint a, uint b, uint countA, uint countB) => (ulong)a < (ulong)b + countB && (ulong)b < (ulong)a + countA;
}

using System.Text;
using System.Text.RegularExpressions;

namespace Grpc.Backup.Orchestrator.Inventory;

/// <summary>
/// The guests this host knows, read from a directory holding one <c>ID.conf</c> file per guest. Each file is kept
/// byte-exact as the guest's raw config. Any invalid file fails the whole load with its file, line and reason:
/// a backup must never run against a half-understood inventory.
/// </summary>
public sealed partial class GuestInventory
{
    private GuestInventory(IReadOnlyDictionary<string, VmGuest> vms, IReadOnlyDictionary<string, ContainerGuest> containers)
    {
        Vms = vms;
        Containers = containers;
    }

    public IReadOnlyDictionary<string, VmGuest> Vms { get; }

    public IReadOnlyDictionary<string, ContainerGuest> Containers { get; }

    public static GuestInventory Load(string directory)
    {
        var vms = new Dictionary<string, VmGuest>(StringComparer.Ordinal);
        var containers = new Dictionary<string, ContainerGuest>(StringComparer.Ordinal);
        foreach (string file in Directory.EnumerateFiles(directory, "*.conf").Order(StringComparer.Ordinal))
        {
            byte[] bytes = File.ReadAllBytes(file);
            if (IsContainer(file, bytes))
            {
                ContainerGuest container = ParseContainer(file, bytes);
                containers.Add(container.GuestId, container);
            }
            else
            {
                VmGuest guest = ParseVm(file, bytes);
                vms.Add(guest.GuestId, guest);
            }
        }
        return new GuestInventory(vms, containers);
    }

    /// <summary>Parses one container file (<c>type: ct</c>). The guest id is the file name without <c>.conf</c>.</summary>
    public static ContainerGuest ParseContainer(string file, byte[] bytes)
    {
        var (guestId, lines) = ReadLines(file, bytes);
        if (!lines.Any(l => l.Key == "type" && l.Value == "ct"))
        {
            throw new ConfigException(file, 0, "missing 'type: ct'");
        }
        return ParseContainer(file, guestId, bytes, lines);
    }

    private static bool IsContainer(string file, byte[] bytes) =>
        ReadLines(file, bytes).Lines.FirstOrDefault(l => l.Key == "type") is { Value: "ct" };

    private static (string GuestId, IReadOnlyList<ConfigLine> Lines) ReadLines(string file, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        string guestId = Path.GetFileNameWithoutExtension(file);
        if (!GuestIdPattern().IsMatch(guestId))
        {
            throw new ConfigException(file, 0, $"guest id '{guestId}' (the file name) must match [A-Za-z0-9._-]{{1,64}}");
        }
        string text;
        try
        {
            text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new ConfigException(file, 0, "the file is not valid UTF-8");
        }
        return (guestId, ConfigLine.Parse(file, text));
    }

    /// <summary>Parses one VM file. The guest id is the file name without <c>.conf</c>.</summary>
    public static VmGuest ParseVm(string file, byte[] bytes)
    {
        var (guestId, lines) = ReadLines(file, bytes);
        string? type = null, name = null, qmp = null, agent = null;
        var disks = new List<VmDisk>();
        foreach (ConfigLine line in lines)
        {
            switch (line.Key)
            {
                case "type":
                    type = Single(line, type);
                    if (type != "vm")
                    {
                        throw line.Error($"unknown guest type '{type}'; expected 'vm' or 'ct'");
                    }
                    break;
                case "name":
                    name = Single(line, name);
                    break;
                case "qmp":
                    qmp = AbsolutePath(line, Single(line, qmp));
                    break;
                case "agent":
                    agent = AbsolutePath(line, Single(line, agent));
                    break;
                case "disk":
                    disks.Add(ParseDisk(line, disks));
                    break;
                default:
                    // Unknown keys are the guest's own configuration (as in a Proxmox config): kept byte-exact in
                    // the raw config, never interpreted by the host.
                    break;
            }
        }
        if (type is null)
        {
            throw new ConfigException(file, 0, "missing 'type: vm'");
        }
        if (qmp is null)
        {
            throw new ConfigException(file, 0, "missing 'qmp: /path/to/qmp.sock'");
        }
        if (disks.Count == 0)
        {
            throw new ConfigException(file, 0, "a VM needs at least one 'disk:' line");
        }
        return new VmGuest(guestId, name ?? guestId, qmp, agent, disks, bytes, file);
    }

    private static VmDisk ParseDisk(ConfigLine line, List<VmDisk> earlier)
    {
        var (device, options) = line.SplitOptions();
        if (!Protocol.DeviceName.IsValid(device))
        {
            throw line.Error($"device name '{device}' must match [A-Za-z0-9._+=-]{{1,128}}");
        }
        if (earlier.Any(d => d.DeviceName == device))
        {
            throw line.Error($"device '{device}' is defined twice");
        }
        foreach (string key in options.Keys)
        {
            if (key is not ("file" or "format" or "node" or "filter" or "throttle-group" or "backup" or "size"))
            {
                throw line.Error($"unknown disk option '{key}'");
            }
        }
        string file = AbsolutePath(line, Required(line, options, "file"));
        DiskFormat format = Required(line, options, "format") switch
        {
            "raw" => DiskFormat.Raw,
            "qcow2" => DiskFormat.Qcow2,
            string other => throw line.Error($"disk format '{other}' is not supported; use raw or qcow2"),
        };
        string node = NodeName(line, Required(line, options, "node"));
        string filter = NodeName(line, Required(line, options, "filter"));
        string group = options.TryGetValue("throttle-group", out string? g) ? NodeName(line, g) : "";
        bool backup = ParseYesNo(line, options);
        ulong? size = options.TryGetValue("size", out string? sizeText) ? ParseSize(line, sizeText) : null;
        return new VmDisk(device, file, format, node, filter, group, backup, size);
    }

    /// <summary>At most 64 TiB: an excluded disk is recreated from this number, and a config is not to be trusted blindly.</summary>
    private const ulong MaxDiskSize = 64UL << 40;

    private static ulong ParseSize(ConfigLine line, string text)
    {
        int shift = text.Length > 0 ? text[^1] switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => 0 } : 0;
        string digits = shift == 0 ? text : text[..^1];
        if (!ulong.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ulong value)
            || value == 0 || value > MaxDiskSize >> shift || ((value << shift) & 511) != 0)
        {
            throw line.Error($"size={text}: expected a positive multiple of 512 bytes up to 64T (suffixes K, M, G, T)");
        }
        return value << shift;
    }

    private static string Single(ConfigLine line, string? existing) =>
        existing is null ? line.Value : throw line.Error($"'{line.Key}' is given twice");

    private static string Required(ConfigLine line, IReadOnlyDictionary<string, string> options, string key) =>
        options.TryGetValue(key, out string? value) ? value : throw line.Error($"disk needs {key}=");

    private static string AbsolutePath(ConfigLine line, string path) =>
        path.Length > 0 && path[0] == '/' && !path.Contains('\0', StringComparison.Ordinal)
            ? path
            : throw line.Error($"'{path}' is not an absolute path");

    private static string NodeName(ConfigLine line, string name) =>
        NodeNamePattern().IsMatch(name) ? name : throw line.Error($"'{name}' is not a valid QEMU node name");

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}\\z")]
    private static partial Regex GuestIdPattern();

    // QEMU node names: a letter first, then letters, digits, '-', '.', '_'; at most 31 characters.
    [GeneratedRegex("^[A-Za-z][A-Za-z0-9._-]{0,30}\\z")]
    private static partial Regex NodeNamePattern();
}

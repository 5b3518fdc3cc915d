using Grpc.Backup.Containers;

namespace Grpc.Backup.Orchestrator.Inventory;

public sealed partial class GuestInventory
{
    /// <summary>
    /// Parses a container's lines (<c>type: ct</c>): <c>rootfs: /path</c>; <c>mp: /in/container host=/path backup=yes</c>
    /// (any number); <c>idmap: u|g CONTAINER HOST COUNT</c> (any number; none means privileged); <c>cgroup: /sys/fs/cgroup/...</c>;
    /// <c>firewall: /path</c>. Other keys are the container's own configuration, kept byte-exact.
    /// </summary>
    private static ContainerGuest ParseContainer(string file, string guestId, byte[] bytes, IReadOnlyList<ConfigLine> lines)
    {
        string? name = null, rootfs = null, cgroup = null, firewall = null;
        var mountPoints = new List<ContainerMountPoint>();
        var idMapLines = new List<ConfigLine>();
        foreach (ConfigLine line in lines)
        {
            switch (line.Key)
            {
                case "type":
                    break;
                case "name":
                    name = Single(line, name);
                    break;
                case "rootfs":
                    rootfs = AbsolutePath(line, Single(line, rootfs));
                    break;
                case "cgroup":
                    cgroup = AbsolutePath(line, Single(line, cgroup));
                    break;
                case "firewall":
                    firewall = AbsolutePath(line, Single(line, firewall));
                    break;
                case "mp":
                    mountPoints.Add(ParseMountPoint(line, mountPoints));
                    break;
                case "idmap":
                    idMapLines.Add(line);
                    break;
                default:
                    break;
            }
        }
        if (rootfs is null)
        {
            throw new ConfigException(file, 0, "a container needs 'rootfs: /path/to/rootfs'");
        }
        IdMap idMap;
        try
        {
            idMap = IdMap.Parse(idMapLines.Select(l => l.Value));
        }
        catch (FormatException e)
        {
            // IdMap names the n-th map line; point at the file's line instead.
            throw (idMapLines.Count > 0 ? idMapLines[0] : new ConfigLine(file, 0, "idmap", "")).Error($"invalid id map: {e.Message}");
        }
        return new ContainerGuest(guestId, name ?? guestId, rootfs, mountPoints, idMap, cgroup, firewall, bytes, file);
    }

    private static ContainerMountPoint ParseMountPoint(ConfigLine line, List<ContainerMountPoint> earlier)
    {
        var (containerPath, options) = line.SplitOptions();
        foreach (string key in options.Keys)
        {
            if (key is not ("host" or "backup"))
            {
                throw line.Error($"unknown mount point option '{key}'");
            }
        }
        AbsolutePath(line, containerPath);
        if (containerPath.Split('/').Any(segment => segment is "." or "..") || containerPath.TrimEnd('/').Length == 0)
        {
            throw line.Error($"mount point '{containerPath}' must be an absolute path below / without '.' or '..'");
        }
        if (earlier.Any(m => m.ContainerPath.TrimEnd('/') == containerPath.TrimEnd('/')))
        {
            throw line.Error($"mount point '{containerPath}' is defined twice");
        }
        string host = AbsolutePath(line, Required(line, options, "host"));
        return new ContainerMountPoint(containerPath, host, ParseYesNo(line, options));
    }

    private static bool ParseYesNo(ConfigLine line, IReadOnlyDictionary<string, string> options) =>
        !options.TryGetValue("backup", out string? b) || b switch
        {
            "yes" or "1" or "true" => true,
            "no" or "0" or "false" => false,
            _ => throw line.Error($"backup={b}: expected yes or no"),
        };
}

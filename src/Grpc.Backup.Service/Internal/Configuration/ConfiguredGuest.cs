using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// A guest as the service schedules it: a VM or a container, each backed up by its own runner, with the same
/// selection, locks, hooks, journal and catalog.
/// </summary>
internal sealed record ConfiguredGuest(string Id, string Name, IReadOnlyCollection<string> Tags, VmGuest? Vm, ContainerGuest? Container)
{
    /// <summary>vzdump's VMTYPE for hooks.</summary>
    public string TypeName => Vm is not null ? "qemu" : "lxc";

    /// <summary>Parses one <c>guests/ID.conf</c>: <c>type: ct</c> is a container, anything else is read as a VM.</summary>
    public static ConfiguredGuest Parse(string file, byte[] bytes)
    {
        string text = System.Text.Encoding.UTF8.GetString(bytes);
        IReadOnlyList<ConfigLine> lines = ConfigLine.Parse(file, text);
        // Tags live in the guest's own config ('tags: a b'), which the inventory keeps raw: read them from there.
        var tags = new List<string>();
        foreach (ConfigLine line in lines.Where(l => l.Key == "tags"))
        {
            foreach (string tag in ConfigValues.Words(line))
            {
                tags.Add(GuestSelection.IsPlainName(tag) ? tag : throw line.Error($"'{tag}' is not a valid tag"));
            }
        }
        if (lines.Any(l => l.Key == "type" && l.Value == "ct"))
        {
            ContainerGuest container = GuestInventory.ParseContainer(file, bytes);
            return new ConfiguredGuest(container.GuestId, container.Name, tags, null, container);
        }
        VmGuest vm = GuestInventory.ParseVm(file, bytes);
        return new ConfiguredGuest(vm.GuestId, vm.Name, tags, vm, null);
    }
}

using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>
/// A guest as the service schedules it. Today every guest is a VM; container guests join here as a second kind with
/// their own runner, and selection, locks, hooks and the catalog stay the same.
/// </summary>
internal sealed record ConfiguredGuest(string Id, string Name, IReadOnlyCollection<string> Tags, VmGuest Vm)
{
    /// <summary>vzdump's VMTYPE for hooks.</summary>
    public string TypeName { get; } = "qemu";

    public static ConfiguredGuest FromVm(VmGuest vm)
    {
        // Tags live in the guest's own config ('tags: a b'), which the inventory keeps raw: read them from there.
        var tags = new List<string>();
        foreach (ConfigLine line in ConfigLine.Parse(vm.ConfigPath, System.Text.Encoding.UTF8.GetString(vm.RawConfig.Span)))
        {
            if (line.Key == "tags")
            {
                foreach (string tag in ConfigValues.Words(line))
                {
                    tags.Add(GuestSelection.IsPlainName(tag) ? tag : throw line.Error($"'{tag}' is not a valid tag"));
                }
            }
        }
        return new ConfiguredGuest(vm.GuestId, vm.Name, tags, vm);
    }
}

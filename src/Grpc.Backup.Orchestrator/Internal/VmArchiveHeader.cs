using Grpc.Backup.Host;
using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// What a VM restore asks first: the mechanism (must be VM / QEMU_IMG) and the archived guest and firewall configs,
/// byte-exact.
/// </summary>
internal sealed record VmArchiveHeader(byte[] GuestConfig, byte[]? FirewallConfig)
{
    public static async Task<VmArchiveHeader> ReadAsync(ProviderConnection provider, string archiveName, CancellationToken cancellationToken)
    {
        var mechanism = await provider.Restore.RestoreGetMechanismAsync(new RestoreGetMechanismRequest { ArchiveName = archiveName },
            cancellationToken: cancellationToken);
        if (mechanism.GuestType != GuestType.Vm || mechanism.MechanismCase != RestoreGetMechanismResponse.MechanismOneofCase.Vm
            || mechanism.Vm != VmRestoreMechanism.QemuImg)
        {
            throw new BackupException($"archive {archiveName} is a {mechanism.GuestType} archive with mechanism {mechanism.MechanismCase}; expected a VM restored with qemu-img");
        }
        byte[] guestConfig = (await provider.Restore.ArchiveGetGuestConfigAsync(new ArchiveGetGuestConfigRequest { ArchiveName = archiveName },
            cancellationToken: cancellationToken)).GuestConfig.ToByteArray();
        var firewall = await provider.Restore.ArchiveGetFirewallConfigAsync(new ArchiveGetFirewallConfigRequest { ArchiveName = archiveName },
            cancellationToken: cancellationToken);
        return new VmArchiveHeader(guestConfig, firewall.Present ? firewall.FirewallConfig.ToByteArray() : null);
    }

    /// <summary>Writes guest.conf (and firewall.conf when there is one) into the target, exclusively.</summary>
    public async Task WriteAsync(RestoreTarget target, CancellationToken cancellationToken)
    {
        await target.WriteFileAsync("guest.conf", GuestConfig, cancellationToken);
        if (FirewallConfig is not null)
        {
            await target.WriteFileAsync("firewall.conf", FirewallConfig, cancellationToken);
        }
    }
}

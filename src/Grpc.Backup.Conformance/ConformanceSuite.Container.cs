using System.Text;
using Grpc.Backup.Conformance.Internal;
using Grpc.Backup.Containers;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol.V1;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Backup.Conformance;

// The container round trip through the orchestrator's runners, with a real user namespace: a sample tree backed up
// with the mechanism the provider chooses (TAR_STREAM: the host's tar; DIRECTORY: the provider's worker as the
// container's root), restored into a new root, and compared entry by entry (type, mode, owner, content).
public sealed partial class ConformanceSuite
{
    private async Task RunContainerRoundTripAsync(CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            return;
        }
        await CheckAsync("ct.round-trip", async ct =>
        {
            Expect.Requires(Capabilities.ContainerBackupMechanisms.Count > 0, "no container backup mechanism advertised");
            Expect.Requires(Capabilities.ContainerRestoreMechanisms.Count > 0, "no container restore mechanism advertised");
            // The container's root (tar or the provider's worker, in the namespace) must reach the tree and the view.
            for (var parent = new DirectoryInfo(_scratch).Parent; parent is not null; parent = parent.Parent)
            {
                Expect.That((parent.UnixFileMode & UnixFileMode.OtherExecute) != 0,
                    $"cannot run: {parent.FullName} is not searchable by others, so the container's root cannot reach its tree; choose --scratch elsewhere");
            }
            // 0755 for the same reason.
            string directory = Directory.CreateDirectory(Path.Combine(_scratch, "ct"), (UnixFileMode)0b111_101_101).FullName;
            try
            {
                string rootfs = Path.Combine(directory, "rootfs");
                await SampleTree.BuildAsync(rootfs, ct);
                string guestId = _guestId + "-ct";
                byte[] config = Encoding.UTF8.GetBytes(
                    $"# scratch container of grpc-backup-conformance\ntype: ct\nname: {guestId}\nrootfs: {rootfs}\n" +
                    $"idmap: u 0 {SampleTree.HostBase} 65536\nidmap: g 0 {SampleTree.HostBase} 65536\n");
                ContainerGuest guest = GuestInventory.ParseContainer(Path.Combine(directory, guestId + ".conf"), config);
                string work = Directory.CreateDirectory(Path.Combine(directory, "work"), (UnixFileMode)0b111_101_101).FullName;
                ContainerBackupResult backup = await new ContainerBackupRunner(Connection, NullLogger<ContainerBackupRunner>.Instance).BackupAsync(_jobId, guest,
                    new ContainerBackupRunOptions { RuntimeDirectory = PrivateDirectory("ct-run"), TemporaryDirectory = work }, ct);
                _archives.Add(backup.ArchiveName);
                Expect.That(Capabilities.ContainerBackupMechanisms.Contains(backup.Mechanism), $"the provider chose {backup.Mechanism}, which it does not advertise");

                var mechanism = await Expect.OkAsync("RestoreGetMechanism", () => Connection.Restore.RestoreGetMechanismAsync(
                    new RestoreGetMechanismRequest { ArchiveName = backup.ArchiveName }, cancellationToken: ct));
                Expect.That(mechanism.GuestType == GuestType.Container && mechanism.MechanismCase == RestoreGetMechanismResponse.MechanismOneofCase.Container,
                    $"RestoreGetMechanism of a container archive answered {mechanism}");

                // A restored rootfs sits under a root-only parent (host users must not reach its setuid files).
                string target = Path.Combine(Directory.CreateDirectory(Path.Combine(directory, "restored"), UnixFileMode.UserRead | UnixFileMode.UserWrite
                    | UnixFileMode.UserExecute).FullName, "rootfs");
                ContainerRestoreRunResult restored = await new ContainerRestoreRunner(Connection, NullLogger<ContainerRestoreRunner>.Instance).RestoreAsync(
                    backup.ArchiveName, new ContainerRestoreRunOptions { IdMap = IdMap.CreateDefault(), TargetRootFileSystem = target, ConfigDirectory = Path.Combine(directory, "config") }, ct);
                var expected = await SampleTree.ListAsync(rootfs, ct);
                var actual = await SampleTree.ListAsync(target, ct);
                var differences = expected.Keys.Union(actual.Keys).Where(k => expected.GetValueOrDefault(k) != actual.GetValueOrDefault(k))
                    .Select(k => $"{k}: {expected.GetValueOrDefault(k) ?? "(absent)"} -> {actual.GetValueOrDefault(k) ?? "(absent)"}").ToList();
                Expect.That(differences.Count == 0, $"the restored tree differs from the source ({backup.Mechanism}): {string.Join("; ", differences.Take(5))}");
                Expect.That(restored.GuestConfig.Span.SequenceEqual(config), "the restored container config is not byte-exact");
            }
            finally
            {
                Directory.Delete(directory, recursive: true);
            }
        }, cancellationToken);
    }
}

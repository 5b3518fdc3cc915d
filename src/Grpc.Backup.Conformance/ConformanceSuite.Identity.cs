using Grpc.Backup.Conformance.Internal;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;
using Grpc.Health.V1;

namespace Grpc.Backup.Conformance;

// The handshake (GetProviderInfo, Probe, Health), capability stability, and UNIMPLEMENTED for what is not advertised.
public sealed partial class ConformanceSuite
{
    private static readonly ProviderConnectionOptions ConnectionOptions = new()
    {
        // Borg and restic take their time on a cold repository; a wrong answer is a failure, a slow one is not.
        UnaryDeadline = TimeSpan.FromMinutes(3),
        // A check that gets UNAVAILABLE must see it, not have it retried away.
        MaxRetries = 0,
    };

    private async Task RunIdentityChecksAsync(CancellationToken cancellationToken)
    {
        // Always runs: every other check needs the connection.
        var watch = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            _connection = await ProviderConnection.ConnectAsync(_options.Endpoint, ConnectionOptions, cancellationToken: cancellationToken);
            _results.Add(new CheckResult("identity.handshake", CheckOutcome.Passed, "", watch.Elapsed));
        }
        catch (ProviderHandshakeException e)
        {
            _results.Add(new CheckResult("identity.handshake", CheckOutcome.Failed, e.Message, watch.Elapsed));
            return;
        }

        await CheckAsync("identity.protocol-major", _ =>
        {
            Expect.That(Connection.Info.ProtocolMajors.Contains(ProtocolVersion.CurrentMajor),
                $"protocol_majors [{string.Join(", ", Connection.Info.ProtocolMajors)}] does not list {ProtocolVersion.CurrentMajor}");
            Expect.That(Connection.Info.ProtocolMajors.Distinct().Count() == Connection.Info.ProtocolMajors.Count, "protocol_majors lists a major twice");
            return Task.CompletedTask;
        }, cancellationToken);

        await CheckAsync("identity.capabilities-stable", async ct =>
        {
            // "Capabilities are a property of the build": equal on every call and on every connection.
            for (int i = 0; i < 3; i++)
            {
                var again = await Expect.OkAsync("GetProviderInfo", () => Connection.Identity.GetProviderInfoAsync(new GetProviderInfoRequest(), cancellationToken: ct));
                Expect.That(again.Equals(Connection.Info), $"GetProviderInfo call {i + 2} differs from the first: {again} vs {Connection.Info}");
            }
            await using var second = await ProviderConnection.ConnectAsync(_options.Endpoint, ConnectionOptions, cancellationToken: ct);
            Expect.That(second.Info.Equals(Connection.Info), "GetProviderInfo on a new connection differs from the first connection's");
        }, cancellationToken);

        await CheckAsync("identity.probe-and-health", async ct =>
        {
            for (int i = 0; i < 2; i++)
            {
                var probe = await Expect.OkAsync("Probe", () => Connection.Identity.ProbeAsync(new ProbeRequest(), cancellationToken: ct));
                Expect.That(probe.State == ProbeResponse.Types.State.Ready, $"Probe answered {probe.State} ({probe.Message}) after the handshake");
            }
            var health = await Expect.OkAsync("Health/Check", () => Connection.Health.CheckAsync(new HealthCheckRequest(), cancellationToken: ct));
            Expect.That(health.Status == HealthCheckResponse.Types.ServingStatus.Serving, $"Health/Check answered {health.Status}");
        }, cancellationToken);

        await CheckAsync("identity.unadvertised-unimplemented", async ct =>
        {
            // "An RPC or mechanism that is not advertised here is never called by the host; if called anyway the
            // provider answers UNIMPLEMENTED." Only the Repository RPCs are advertised one by one.
            var repository = Connection.Repository;
            int checkedCount = 0;
            foreach (RepositoryOperation operation in Enum.GetValues<RepositoryOperation>().Where(o => o != RepositoryOperation.Unspecified && !Advertises(o)))
            {
                checkedCount++;
                switch (operation)
                {
                    case RepositoryOperation.ListBackups:
                        await Expect.StatusAsync("ListBackups", () => repository.ListBackupsAsync(new ListBackupsRequest(), cancellationToken: ct), StatusCode.Unimplemented);
                        break;
                    case RepositoryOperation.StatBackup:
                        await Expect.StatusAsync("StatBackup", () => repository.StatBackupAsync(new StatBackupRequest { ArchiveName = "x" }, cancellationToken: ct), StatusCode.Unimplemented);
                        break;
                    case RepositoryOperation.DeleteBackup:
                        await Expect.StatusAsync("DeleteBackup", () => repository.DeleteBackupAsync(new DeleteBackupRequest { ArchiveName = "x" }, cancellationToken: ct), StatusCode.Unimplemented);
                        break;
                    case RepositoryOperation.PruneBackups:
                        await Expect.StatusAsync("PruneBackups", () => repository.PruneBackupsAsync(new PruneBackupsRequest { GuestId = _guestId, DryRun = true, Policy = new RetentionPolicy { KeepLast = 1 } }, cancellationToken: ct), StatusCode.Unimplemented);
                        break;
                    case RepositoryOperation.UpdateBackupAttributes:
                        await Expect.StatusAsync("UpdateBackupAttributes", () => repository.UpdateBackupAttributesAsync(new UpdateBackupAttributesRequest { ArchiveName = "x" }, cancellationToken: ct), StatusCode.Unimplemented);
                        break;
                    case RepositoryOperation.GetCapacity:
                        await Expect.StatusAsync("GetCapacity", () => repository.GetCapacityAsync(new GetCapacityRequest(), cancellationToken: ct), StatusCode.Unimplemented);
                        break;
                    default:
                        checkedCount--;
                        break;
                }
            }
            Expect.Requires(checkedCount > 0, "every repository operation is advertised");
        }, cancellationToken);
    }
}

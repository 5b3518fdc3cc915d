using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Cluster.Tests.Infrastructure;
using Grpc.Backup.Host;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Cluster.Tests;

/// <summary>
/// The directory provider honours fencing tokens from real etcd slots: a host that lost its slot while frozen is
/// refused by the shared repository, in its running job and in any new one, also after the provider restarts.
/// </summary>
public sealed class DirectoryFencingTests
{
    [Fact]
    public async Task AStaleSlotHoldersTokenIsRefusedByTheDirectoryProvider()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        await using DirectoryProviderProcess provider = await DirectoryProviderProcess.StartAsync();
        await using ClusterSession a = await ClusterSession.ConnectAsync(new ClusterOptions
        {
            Endpoints = etcd.Endpoints, Node = "host-a", LeaseTtl = TimeSpan.FromSeconds(3),
        });
        await using ClusterSession b = await ClusterSession.ConnectAsync(new ClusterOptions { Endpoints = etcd.Endpoints, Node = "host-b" });

        ClusterSlot stale = await a.AcquireSlotAsync("shared", 1, 0);
        string jobA = Guid.NewGuid().ToString();
        await using (ProviderConnection hostA = await ProviderConnection.ConnectAsync(provider.Endpoint))
        {
            await JobInitAsync(hostA, jobA, stale.FencingToken);
            await BackupInitAsync(hostA, jobA, "100");

            // host-a freezes; its lease expires and host-b takes the slot and starts writing.
            Task<ClusterSlot> waiting = b.AcquireSlotAsync("shared", 1, 0);
            await a.StopRenewingAsync();
            await using ClusterSlot current = await waiting.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(stale.SlotName, current.SlotName);
            await using (ProviderConnection hostB = await ProviderConnection.ConnectAsync(provider.Endpoint))
            {
                string jobB = Guid.NewGuid().ToString();
                await JobInitAsync(hostB, jobB, current.FencingToken);
                await BackupInitAsync(hostB, jobB, "200");
            }

            // host-a wakes up and carries on with its job: the repository refuses it.
            var inJob = await Assert.ThrowsAsync<RpcException>(() => BackupInitAsync(hostA, jobA, "101"));
            Assert.Equal(ErrorReason.RepositoryLocked, inJob.GetReason());
            Assert.Contains($"revision {current.Revision}", inJob.Status.Detail, StringComparison.Ordinal);
            var newJob = await Assert.ThrowsAsync<RpcException>(() => JobInitAsync(hostA, Guid.NewGuid().ToString(), stale.FencingToken));
            Assert.Equal(ErrorReason.RepositoryLocked, newJob.GetReason());

            // The newest token per slot is in the repository, not in the provider's memory.
            Assert.Equal($"{current.Revision}\n", await File.ReadAllTextAsync(Path.Combine(provider.RepositoryPath, "@fencing", "storage", "shared", "0")));
        }
        await provider.RestartAsync();
        await using (ProviderConnection again = await ProviderConnection.ConnectAsync(provider.Endpoint))
        {
            var afterRestart = await Assert.ThrowsAsync<RpcException>(() => JobInitAsync(again, Guid.NewGuid().ToString(), stale.FencingToken));
            Assert.Equal(ErrorReason.RepositoryLocked, afterRestart.GetReason());
            // A job without a token (single-host operation) is not fenced; a malformed token is an invalid argument.
            await again.Backup.JobInitAsync(new JobInitRequest { JobId = Guid.NewGuid().ToString(), StartTime = Timestamp.FromDateTime(DateTime.UtcNow) });
            var malformed = await Assert.ThrowsAsync<RpcException>(() => JobInitAsync(again, Guid.NewGuid().ToString(), "../x@1"));
            Assert.Equal(StatusCode.InvalidArgument, malformed.StatusCode);
        }
    }

    private static Task JobInitAsync(ProviderConnection host, string jobId, FencingToken token) => JobInitAsync(host, jobId, token.ToString());

    private static async Task JobInitAsync(ProviderConnection host, string jobId, string token)
    {
        var request = new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) };
        request.Options[FencingToken.OptionName] = token;
        await host.Backup.JobInitAsync(request);
    }

    private static async Task BackupInitAsync(ProviderConnection host, string jobId, string guest) =>
        await host.Backup.BackupInitAsync(new BackupInitRequest
        {
            JobId = jobId, BackupId = Guid.NewGuid().ToString(), GuestId = guest, GuestType = GuestType.Vm,
            BackupTime = Timestamp.FromDateTime(DateTime.UtcNow),
        });
}

using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Backup.Cluster;
using Grpc.Core;

namespace Grpc.Backup.Bench;

/// <summary>
/// cluster-slot-latency: taking and releasing one backup slot through a real etcd (<see cref="ClusterSession.AcquireSlotAsync"/>
/// then the slot's release), against the least any slot needs on the same etcd and client library: one
/// put-if-absent transaction and one delete. Interleaved in rounds so both see the same machine state.
/// </summary>
internal static class ClusterSlotBench
{
    public static async Task<IReadOnlyList<BenchResult>> RunAsync(Uri etcd, int callsPerRound, int rounds)
    {
        await using ClusterSession session = await ClusterSession.ConnectAsync(new ClusterOptions { Endpoints = [etcd], Node = "bench" });
        using var peer = new EtcdClient(etcd.GetLeftPart(UriPartial.Authority), configureChannelOptions: c => c.Credentials = ChannelCredentials.Insecure);
        ByteString key = ByteString.CopyFromUtf8("/bench-peer/slot/0");
        async Task PeerSlotAsync()
        {
            var take = new TxnRequest();
            take.Compare.Add(new Compare { Key = key, Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 });
            take.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = key, Value = ByteString.CopyFromUtf8("bench"), Lease = session.LeaseId } });
            if (!(await peer.TransactionAsync(take)).Succeeded)
            {
                throw new InvalidOperationException("the peer's slot was still held");
            }
            await peer.DeleteAsync(new DeleteRangeRequest { Key = key });
        }
        async Task OurSlotAsync()
        {
            ClusterSlot slot = await session.AcquireSlotAsync("bench", 1, 0);
            await slot.DisposeAsync();
        }
        var oursP50 = new List<double>();
        var oursP99 = new List<double>();
        var peerP50 = new List<double>();
        var peerP99 = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            Func<Task<LatencySample>> ours = () => LatencySample.MeasureAsync(OurSlotAsync, callsPerRound / 4, callsPerRound);
            Func<Task<LatencySample>> bare = () => LatencySample.MeasureAsync(PeerSlotAsync, callsPerRound / 4, callsPerRound);
            LatencySample a, b;
            if (round % 2 == 0)
            {
                a = await ours();
                b = await bare();
            }
            else
            {
                b = await bare();
                a = await ours();
            }
            oursP50.Add(a.Percentile(50));
            oursP99.Add(a.Percentile(99));
            peerP50.Add(b.Percentile(50));
            peerP99.Add(b.Percentile(99));
        }
        const string peerName = "bare etcd txn put-if-absent + delete";
        string notes = $"one etcd 3.4 member on loopback; {rounds} rounds x {callsPerRound} take+release, median of rounds";
        return
        [
            new BenchResult("cluster-slot-p50", LatencySample.Median(oursP50), peerName, LatencySample.Median(peerP50), notes),
            new BenchResult("cluster-slot-p99", LatencySample.Median(oursP99), peerName, LatencySample.Median(peerP99), notes),
        ];
    }
}

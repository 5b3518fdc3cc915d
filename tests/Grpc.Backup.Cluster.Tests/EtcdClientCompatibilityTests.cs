using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Backup.Cluster.Tests.Infrastructure;
using Grpc.Core;

namespace Grpc.Backup.Cluster.Tests;

/// <summary>
/// dotnet-etcd 10.0.0 is generated from etcd 3.7's API; these pin down which of its calls work against Debian's etcd
/// 3.4 server (CONTRIBUTING "Cluster" lists the findings). Each test uses the RPC the cluster library relies on.
/// </summary>
public sealed class EtcdClientCompatibilityTests
{
    private static EtcdClient Connect(EtcdCluster etcd) =>
        new(string.Join(',', etcd.Endpoints.Select(e => e.GetLeftPart(UriPartial.Authority))),
            configureChannelOptions: o => o.Credentials = ChannelCredentials.Insecure);

    [Fact]
    public async Task PutGetAndCreateOnlyTransactionWorkOn34()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        using EtcdClient client = Connect(etcd);
        await client.PutAsync("/t/a", "1");
        Assert.Equal("1", (await client.GetAsync("/t/a")).Kvs.Single().Value.ToStringUtf8());

        TxnRequest CreateOnly(string key, string value)
        {
            var txn = new TxnRequest();
            txn.Compare.Add(new Compare
            {
                Key = ByteString.CopyFromUtf8(key), Target = Compare.Types.CompareTarget.Create,
                Result = Compare.Types.CompareResult.Equal, CreateRevision = 0,
            });
            txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value) } });
            return txn;
        }
        TxnResponse first = await client.TransactionAsync(CreateOnly("/t/slot", "x"));
        TxnResponse second = await client.TransactionAsync(CreateOnly("/t/slot", "y"));
        Assert.True(first.Succeeded);
        Assert.False(second.Succeeded);
        RangeResponse slot = await client.GetAsync("/t/slot");
        Assert.Equal("x", slot.Kvs.Single().Value.ToStringUtf8());
        Assert.Equal(first.Header.Revision, slot.Kvs.Single().CreateRevision);
    }

    [Fact]
    public async Task LeaseGrantKeepAliveAndRevokeWorkOn34()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        using EtcdClient client = Connect(etcd);
        LeaseGrantResponse lease = await client.LeaseGrantAsync(new LeaseGrantRequest { TTL = 30 });
        Assert.True(lease.ID != 0);
        await client.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("/t/held"), Value = ByteString.CopyFromUtf8("v"), Lease = lease.ID });

        using var call = client.GetConnection().LeaseClient.LeaseKeepAlive();
        await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = lease.ID });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(lease.ID, call.ResponseStream.Current.ID);
        Assert.InRange(call.ResponseStream.Current.TTL, 1, 30);
        await call.RequestStream.CompleteAsync();

        await client.LeaseRevokeAsync(new LeaseRevokeRequest { ID = lease.ID });
        Assert.Empty((await client.GetAsync("/t/held")).Kvs);
        LeaseTimeToLiveResponse gone = await client.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = lease.ID });
        Assert.Equal(-1, gone.TTL);
    }

    [Fact]
    public async Task WatchSeesDeleteFromAStartRevisionOn34()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        using EtcdClient client = Connect(etcd);
        PutResponse put = await client.PutAsync("/t/w/1", "v");
        await client.DeleteAsync("/t/w/1");

        // Started after the delete, at the put's revision: etcd replays history, so nothing between read and watch is lost.
        using var call = client.GetConnection().WatchClient.Watch();
        var create = new WatchCreateRequest { Key = ByteString.CopyFromUtf8("/t/w/"), RangeEnd = ByteString.CopyFromUtf8("/t/w0"), StartRevision = put.Header.Revision + 1 };
        create.Filters.Add(WatchCreateRequest.Types.FilterType.Noput);
        await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = create });
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var events = new List<Mvccpb.Event>();
        while (events.Count == 0 && await call.ResponseStream.MoveNext(bound.Token))
        {
            events.AddRange(call.ResponseStream.Current.Events);
        }
        Assert.Equal(Mvccpb.Event.Types.EventType.Delete, Assert.Single(events).Type);
    }

    [Fact]
    public async Task NewerCallsAreUnimplementedOn34()
    {
        // The client offers calls 3.4 has not got (RangeStream is 3.7's); the cluster library uses none of them.
        await using EtcdCluster etcd = await EtcdCluster.StartAsync();
        using EtcdClient client = Connect(etcd);
        StatusResponse status = await client.StatusAsync(new StatusRequest());
        Assert.StartsWith("3.4.", status.Version, StringComparison.Ordinal);
        var e = await Assert.ThrowsAsync<RpcException>(() => client.RangeStreamAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("/t/") }));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
    }
}

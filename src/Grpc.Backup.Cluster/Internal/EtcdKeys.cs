using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;

namespace Grpc.Backup.Cluster.Internal;

/// <summary>
/// The few KV operations the cluster needs, each one transaction or one range. Every one is idempotent, so each is
/// retried through <see cref="EtcdRetry"/> while a dead member refuses it.
/// </summary>
internal sealed class EtcdKeys(EtcdClient client)
{
    public EtcdClient Client { get; } = client;

    /// <summary>
    /// Creates <paramref name="key"/> bound to <paramref name="lease"/> if it does not exist (<c>create_revision == 0</c>).
    /// Returns its create revision, or 0 when another holder has it. The value identifies this one attempt, so a
    /// retried transaction that had in fact committed still finds the key its own.
    /// </summary>
    public async Task<long> TryCreateAsync(string key, string value, long lease, CancellationToken cancellationToken)
    {
        ByteString keyBytes = ByteString.CopyFromUtf8(key);
        var txn = new TxnRequest();
        txn.Compare.Add(CreatedAt(keyBytes, 0));
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = keyBytes, Value = ByteString.CopyFromUtf8(value), Lease = lease } });
        txn.Failure.Add(new RequestOp { RequestRange = new RangeRequest { Key = keyBytes } });
        TxnResponse response = await EtcdRetry.RunAsync(token => Client.TransactionAsync(txn, cancellationToken: token), cancellationToken).ConfigureAwait(false);
        if (response.Succeeded)
        {
            // The put is the transaction's only write, so the revision it created is the header's.
            return response.Header.Revision;
        }
        RangeResponse existing = response.Responses[0].ResponseRange;
        return existing.Kvs.Count == 1 && existing.Kvs[0].Value.ToStringUtf8() == value ? existing.Kvs[0].CreateRevision : 0;
    }

    /// <summary>Deletes the key only if it is the one created at <paramref name="createRevision"/>.</summary>
    public async Task DeleteIfCreatedAtAsync(string key, long createRevision)
    {
        ByteString keyBytes = ByteString.CopyFromUtf8(key);
        var txn = new TxnRequest();
        txn.Compare.Add(CreatedAt(keyBytes, createRevision));
        txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = keyBytes } });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await EtcdRetry.RunAsync(token => Client.TransactionAsync(txn, cancellationToken: token), timeout.Token).ConfigureAwait(false);
    }

    /// <summary>Puts <paramref name="key"/> bound to <paramref name="lease"/>.</summary>
    public Task PutAsync(string key, string value, long lease, CancellationToken cancellationToken) =>
        EtcdRetry.RunAsync(token => Client.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value), Lease = lease },
            cancellationToken: token), cancellationToken);

    /// <summary>Deletes <paramref name="key"/>.</summary>
    public Task DeleteAsync(string key, CancellationToken cancellationToken) =>
        EtcdRetry.RunAsync(token => Client.DeleteAsync(key, cancellationToken: token), cancellationToken);

    /// <summary>Every key under <paramref name="prefix"/>, and the revision the range was read at.</summary>
    public async Task<(IReadOnlyList<Mvccpb.KeyValue> Kvs, long Revision)> RangeAsync(string prefix, CancellationToken cancellationToken)
    {
        var request = new RangeRequest
        {
            Key = ByteString.CopyFromUtf8(prefix),
            RangeEnd = ByteString.CopyFromUtf8(RangeEnd(prefix)),
        };
        RangeResponse response = await EtcdRetry.RunAsync(token => Client.GetAsync(request, cancellationToken: token), cancellationToken).ConfigureAwait(false);
        return ([.. response.Kvs], response.Header.Revision);
    }

    /// <summary>The comparison "the key was created at <paramref name="revision"/>" (0: the key does not exist).</summary>
    private static Compare CreatedAt(ByteString key, long revision) => new()
    {
        Key = key,
        Target = Compare.Types.CompareTarget.Create,
        Result = Compare.Types.CompareResult.Equal,
        CreateRevision = revision,
    };

    /// <summary>The range end that covers every key starting with <paramref name="prefix"/> (its last byte plus one).</summary>
    public static string RangeEnd(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);
}

using System.Globalization;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Backup.Cluster.Internal;

namespace Grpc.Backup.Cluster;

/// <summary>
/// Scheduled runs of the cluster's jobs: the scheduler (the election's leader) writes <c>fire/JOB/TIME</c> once per
/// scheduled time, created only if absent (<c>create_revision == 0</c>), so a time fires once even when the leader
/// changes between its decision and its write; every host watches <c>fire/</c> and runs its own share. Not bound to
/// a lease: a fire outlives the leader that wrote it. <c>schedule/JOB</c>, written in the same transaction, is the
/// newest time fired, which a new leader continues from (and catches up as <c>repeat-missed</c> says).
/// </summary>
public sealed partial class ClusterSession
{
    /// <summary>How many fires of each job are kept; older ones are deleted as new ones are written.</summary>
    public const int FiresKept = 10;

    /// <summary>Fires <paramref name="job"/>'s run scheduled at <paramref name="scheduled"/>; false when it was fired already.</summary>
    public async Task<bool> FireAsync(string job, DateTime scheduled, string reason, CancellationToken cancellationToken = default)
    {
        ThrowIfLost();
        string time = FireTime(scheduled);
        string key = Key($"fire/{job}/{time}");
        ByteString keyBytes = ByteString.CopyFromUtf8(key);
        string value = $"{Node}:{Guid.NewGuid():N}:{reason}";
        var txn = new TxnRequest();
        txn.Compare.Add(new Compare { Key = keyBytes, Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 });
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = keyBytes, Value = ByteString.CopyFromUtf8(value) } });
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8(Key($"schedule/{job}")), Value = ByteString.CopyFromUtf8(time) } });
        txn.Failure.Add(new RequestOp { RequestRange = new RangeRequest { Key = keyBytes } });
        TxnResponse response = await EtcdRetry.RunAsync(token => Keys.Client.TransactionAsync(txn, cancellationToken: token), cancellationToken).ConfigureAwait(false);
        bool fired = response.Succeeded
            || response.Responses[0].ResponseRange.Kvs is [{ } existing] && existing.Value.ToStringUtf8() == value;
        if (fired)
        {
            var (kvs, _) = await Keys.RangeAsync(Key($"fire/{job}/"), cancellationToken).ConfigureAwait(false);
            foreach (var old in kvs.OrderByDescending(kv => kv.CreateRevision).Skip(FiresKept))
            {
                await Keys.DeleteAsync(old.Key.ToStringUtf8(), cancellationToken).ConfigureAwait(false);
            }
        }
        return fired;
    }

    /// <summary>The newest time <paramref name="job"/> was fired, or null when it never was.</summary>
    public async Task<DateTime?> LastFiredAsync(string job, CancellationToken cancellationToken = default)
    {
        var (kvs, _) = await Keys.RangeAsync(Key($"schedule/{job}"), cancellationToken).ConfigureAwait(false);
        return kvs.FirstOrDefault(kv => kv.Key.ToStringUtf8() == Key($"schedule/{job}")) is { } kv ? ParseFireTime(kv.Value.ToStringUtf8()) : null;
    }

    /// <summary>
    /// Records <paramref name="scheduled"/> as <paramref name="job"/>'s newest time without firing it: a new job starts
    /// counting, or missed times a job does not repeat are passed over.
    /// </summary>
    public Task MarkScheduledAsync(string job, DateTime scheduled, CancellationToken cancellationToken = default) =>
        Keys.PutAsync(Key($"schedule/{job}"), FireTime(scheduled), 0, cancellationToken);

    /// <summary>Fires created after <paramref name="afterRevision"/>, oldest first, and the revision of this read.</summary>
    public async Task<(IReadOnlyList<ClusterFire> Fires, long ReadRevision)> ReadFiresAsync(long afterRevision, CancellationToken cancellationToken = default)
    {
        string prefix = Key("fire/");
        var request = new RangeRequest
        {
            Key = ByteString.CopyFromUtf8(prefix),
            RangeEnd = ByteString.CopyFromUtf8(EtcdKeys.RangeEnd(prefix)),
            MinCreateRevision = afterRevision + 1,
        };
        RangeResponse response = await EtcdRetry.RunAsync(token => Keys.Client.GetAsync(request, cancellationToken: token), cancellationToken).ConfigureAwait(false);
        var fires = new List<ClusterFire>();
        foreach (var kv in response.Kvs.OrderBy(kv => kv.CreateRevision))
        {
            string[] parts = kv.Key.ToStringUtf8()[prefix.Length..].Split('/');
            string[] value = kv.Value.ToStringUtf8().Split(':', 3);
            if (parts.Length == 2 && ParseFireTime(parts[1]) is { } scheduled)
            {
                fires.Add(new ClusterFire(parts[0], scheduled, value[0], value.Length == 3 ? value[2] : "", kv.CreateRevision));
            }
        }
        return (fires, response.Header.Revision);
    }

    /// <summary>Waits for a new fire after <paramref name="readRevision"/>, for at most <paramref name="bound"/>.</summary>
    public Task WaitForFiresAsync(long readRevision, TimeSpan bound, CancellationToken cancellationToken = default) =>
        PrefixWatch.WaitAsync(Keys.Client.GetConnection().WatchClient, Key("fire/"), readRevision, bound, deletesOnly: false, cancellationToken);

    private static string FireTime(DateTime scheduled) =>
        scheduled.ToUniversalTime().ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);

    private static DateTime? ParseFireTime(string text) =>
        DateTime.TryParseExact(text, "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture,
            DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out DateTime time) ? time : null;
}

using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;

namespace Grpc.Backup.Cluster.Internal;

/// <summary>
/// Waits for a change under a prefix after a given revision: one etcd watch, started at the revision after the caller's
/// read so no change in between is missed. With <c>deletesOnly</c> (NOPUT-filtered) only a delete counts: a slot
/// released, or its lease expired. Returns on the first event, when the bound passes, or when the watch ends; the caller
/// reads again either way.
/// </summary>
internal static class PrefixWatch
{
    public static async Task WaitAsync(Watch.WatchClient watch, string prefix, long afterRevision, TimeSpan bound, bool deletesOnly,
        CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(bound);
        try
        {
            using AsyncDuplexStreamingCall<WatchRequest, WatchResponse> call = watch.Watch(cancellationToken: timeout.Token);
            var create = new WatchCreateRequest
            {
                Key = ByteString.CopyFromUtf8(prefix),
                RangeEnd = ByteString.CopyFromUtf8(EtcdKeys.RangeEnd(prefix)),
                StartRevision = afterRevision + 1,
            };
            if (deletesOnly)
            {
                create.Filters.Add(WatchCreateRequest.Types.FilterType.Noput);
            }
            await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = create }, timeout.Token).ConfigureAwait(false);
            while (await call.ResponseStream.MoveNext(timeout.Token).ConfigureAwait(false))
            {
                WatchResponse response = call.ResponseStream.Current;
                if (response.Canceled || response.CompactRevision > 0 || response.Events.Count > 0)
                {
                    // A change, or a watch etcd would not keep (compacted past our revision): either way, look again.
                    return;
                }
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is OperationCanceledException
            || e is RpcException { StatusCode: StatusCode.Cancelled or StatusCode.DeadlineExceeded or StatusCode.Unavailable })
        {
            // The bound passed or the member went away: the caller reads again, which also re-checks etcd.
            cancellationToken.ThrowIfCancellationRequested();
        }
    }
}

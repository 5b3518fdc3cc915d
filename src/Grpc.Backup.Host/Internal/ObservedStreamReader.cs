using Grpc.Core;

namespace Grpc.Backup.Host.Internal;

/// <summary>A response stream that ends its call's <see cref="RpcCallScope"/> when the stream ends or fails.</summary>
internal sealed class ObservedStreamReader<T>(IAsyncStreamReader<T> inner, RpcCallScope scope) : IAsyncStreamReader<T>
{
    public T Current => inner.Current;

    public async Task<bool> MoveNext(CancellationToken cancellationToken)
    {
        try
        {
            bool more = await inner.MoveNext(cancellationToken).ConfigureAwait(false);
            if (!more)
            {
                scope.End(null);
            }
            return more;
        }
        catch (Exception e)
        {
            scope.End(e);
            throw;
        }
    }
}

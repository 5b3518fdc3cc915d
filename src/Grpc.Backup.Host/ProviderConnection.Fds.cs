using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Host;

// The fd sideband of this provider: backup sources go out, restore sources come back.
public sealed partial class ProviderConnection
{
    private readonly FdTransferTable _fdInbox;
    private readonly SemaphoreSlim _fdChannelLock = new(1, 1);
    private FdChannel? _fdChannel;

    /// <summary>
    /// The sideband connection, opened on first use. Its <see cref="FdChannel.ChannelId"/> is the
    /// <c>fd_channel_id</c> to put in requests whose responses carry fds.
    /// </summary>
    public async Task<FdChannel> GetFdChannelAsync(CancellationToken cancellationToken)
    {
        await _fdChannelLock.WaitAsync(cancellationToken);
        try
        {
            if (_fdChannel is { Completion.IsCompleted: false } open)
            {
                return open;
            }
            if (_fdChannel is not null)
            {
                await _fdChannel.DisposeAsync();
            }
            _fdChannel = null;
            using var bound = Bound(cancellationToken);
            try
            {
                _fdChannel = await FdChannel.ConnectAsync(Endpoint.SidebandPath, _fdInbox,
                    _loggerFactory.CreateLogger<FdChannel>(), bound.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new IOException(
                    $"Fd sideband {Endpoint.SidebandPath}: no HELLO within {_options.SidebandTimeout.TotalSeconds:0.#} s");
            }
            return _fdChannel;
        }
        finally
        {
            _fdChannelLock.Release();
        }
    }

    private CancellationTokenSource Bound(CancellationToken cancellationToken)
    {
        var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(_options.SidebandTimeout);
        return bound;
    }

    /// <summary>
    /// Passes <paramref name="fds"/> to the provider and returns the references to put in the request. Keep the
    /// handles open until the request completes.
    /// </summary>
    public async Task<IReadOnlyList<FdRef>> SendFdsAsync(IReadOnlyList<FdToSend> fds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fds);
        FdChannel channel = await GetFdChannelAsync(cancellationToken);
        using var bound = Bound(cancellationToken);
        FdToken token;
        try
        {
            token = await channel.SendAsync(fds, bound.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IOException(
                $"Fd sideband {Endpoint.SidebandPath}: the provider read no transfer within {_options.SidebandTimeout.TotalSeconds:0.#} s");
        }
        return fds.Select((fd, index) => token.ToFdRef(index, fd.Kind)).ToArray();
    }

    /// <summary>Claims an fd the provider passed back (a restore source). The caller owns the result.</summary>
    public ValueTask<PassedFd> ClaimFdAsync(FdRef fdRef, CancellationToken cancellationToken) =>
        _fdInbox.ClaimAsync(fdRef, _options.FdClaimWait, cancellationToken);

    private async ValueTask DisposeFdsAsync()
    {
        if (_fdChannel is not null)
        {
            await _fdChannel.DisposeAsync();
        }
        _fdInbox.Dispose();
        _fdChannelLock.Dispose();
    }
}

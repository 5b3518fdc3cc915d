using System.Diagnostics.CodeAnalysis;
using Grpc.Backup.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Grpc.Backup.Provider.Internal;

/// <summary>Runs the fd sideband listener for the provider's lifetime and removes the socket files at the end.</summary>
internal sealed class SidebandService(ListenPlan plan, FdTransferTable inbox, IOptions<ProviderOptions> options,
    ILoggerFactory loggerFactory) : IHostedService, IAsyncDisposable
{
    private FdChannelListener? _listener;

    public FdChannelListener? Listener => _listener;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _listener = FdChannelListener.FromListeningSocket(plan.SidebandSocket, options.Value.AllowedPeers, inbox,
            loggerFactory.CreateLogger<FdChannelListener>());
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync();

    public bool TryGetChannel(FdToken channelId, [NotNullWhen(true)] out FdChannel? channel)
    {
        channel = null;
        return _listener is not null && _listener.TryGetChannel(channelId, out channel);
    }

    public async ValueTask DisposeAsync()
    {
        FdChannelListener? listener = Interlocked.Exchange(ref _listener, null);
        if (listener is not null)
        {
            await listener.DisposeAsync();
            plan.DeleteSocketFiles();
        }
    }
}

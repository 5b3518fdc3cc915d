using Google.Protobuf;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Grpc.Backup.Provider;

/// <summary>
/// A provider's access to the fd sideband: claim the fds the host passed (backup sources, log files) and pass fds back
/// to the host (restore sources) on the connection the host named.
/// </summary>
public sealed partial class ProviderFds
{
    private readonly FdTransferTable _inbox;
    private readonly Internal.SidebandService _sideband;
    private readonly ProviderOptions _options;

    internal ProviderFds(FdTransferTable inbox, Internal.SidebandService sideband, IOptions<ProviderOptions> options)
    {
        _inbox = inbox;
        _sideband = sideband;
        _options = options.Value;
    }

    /// <summary>
    /// Claims the fd <paramref name="fdRef"/> names. The caller owns the result. Failures are thrown as the
    /// INVALID_ARGUMENT statuses the contract names, so a service method can let them propagate.
    /// </summary>
    public ValueTask<PassedFd> ClaimAsync(FdRef? fdRef, CancellationToken cancellationToken) =>
        _inbox.ClaimAsync(fdRef, _options.FdClaimWait, cancellationToken);

    /// <summary>
    /// Sends <paramref name="fds"/> to the host on the sideband connection it announced as <paramref name="fdChannelId"/>
    /// and returns the references to put in the response. The caller keeps its handles open until the call completes.
    /// </summary>
    public async Task<IReadOnlyList<FdRef>> SendToHostAsync(ByteString fdChannelId, IReadOnlyList<FdToSend> fds,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(fdChannelId);
        ArgumentNullException.ThrowIfNull(fds);
        FdToken channelId;
        try
        {
            channelId = FdToken.FromBytes(fdChannelId.Span);
        }
        catch (ArgumentException)
        {
            throw ProviderErrors.Create(StatusCode.FailedPrecondition,
                "fd_channel_id is missing or malformed; connect the fd sideband and pass the id from its HELLO");
        }
        if (!_sideband.TryGetChannel(channelId, out FdChannel? channel))
        {
            throw ProviderErrors.Create(StatusCode.FailedPrecondition,
                $"no sideband connection has the id {channelId}; it may have closed: reconnect the sideband");
        }
        FdToken token = await channel.SendAsync(fds, cancellationToken);
        var refs = new FdRef[fds.Count];
        for (int i = 0; i < fds.Count; i++)
        {
            refs[i] = token.ToFdRef(i, fds[i].Kind);
        }
        return refs;
    }
}

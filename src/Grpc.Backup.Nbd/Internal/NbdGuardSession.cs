using System.Numerics;
using System.Buffers;
using System.Net.Sockets;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// One client connection of an <see cref="NbdGuard"/>: the guard plays a fixed-newstyle NBD server to the client
/// (<c>.Handshake.cs</c>) and forwards the commands it allows to its own, already negotiated upstream connection
/// (<c>.Transmission.cs</c>), writing the replies itself (<c>.Replies.cs</c>). The upstream connection is in the
/// transmission phase before the client gets its socket, so nothing the client does, or fails to do, in time can
/// make the upstream server drop it.
/// </summary>
internal sealed partial class NbdGuardSession : IDisposable
{
    /// <summary>Budget unit for bytes in flight; every request costs at least one.</summary>
    private const int BudgetUnit = 512 * 1024;

    private readonly Socket _client;
    private readonly NbdSocketReader _in;
    private readonly GuardUpstream _upstream;
    private readonly GuardedExport _export;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly SemaphoreSlim _budget;
    private readonly int _budgetUnits;

    /// <summary>
    /// READ payload buffers of this connection. Its own pool, not the shared one: the shared pool keeps arrays per
    /// thread and per core for the life of the process, so a provider's large reads stayed in the host's memory after
    /// its backup (grpc-backupd's heap grew with every backup in the soak). This one holds at most what the budget lets
    /// be in flight at once, and goes with the connection.
    /// </summary>
    private readonly ArrayPool<byte> _readBuffers;
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<int, CancellationToken, Task>? _readPacer;
    private bool _structured;
    private bool _noZeroes;

    /// <summary>Client-side ids (index + 1 into <see cref="GuardedExport.Contexts"/>) the client selected.</summary>
    private int[] _selected = [];

    public NbdGuardSession(Socket client, GuardUpstream upstream, GuardedExport export, NbdGuardOptions options)
    {
        _client = client;
        _in = new NbdSocketReader(client);
        _upstream = upstream;
        _export = export;
        _readPacer = options.ReadPacer;
        _budgetUnits = Math.Max(1, options.MaxBytesInFlight / BudgetUnit);
        _budget = new SemaphoreSlim(_budgetUnits, _budgetUnits);
        _readBuffers = ArrayPool<byte>.Create((int)BitOperations.RoundUpToPowerOf2((uint)options.MaxRequestSize), _budgetUnits);
    }

    /// <summary>Budget held by requests in flight, in bytes.</summary>
    public long BytesInFlight => (long)(_budgetUnits - _budget.CurrentCount) * BudgetUnit;

    /// <summary>Serves the client until it disconnects, breaks the protocol or <see cref="Stop"/> is called; never throws.</summary>
    public async Task RunAsync()
    {
        try
        {
            if (await HandshakeAsync())
            {
                await TransmitAsync();
            }
        }
        catch (Exception)
        {
            // The client went away or broke the protocol, the upstream server failed, or the guard is stopping: the
            // session ends either way, and a client can never make the host's task fault.
        }
        finally
        {
            await CloseAsync();
        }
    }

    /// <summary>Ends the session: the client's socket is shut down, so its copies (passed to other processes) go dead too.</summary>
    public void Stop()
    {
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }

        ShutdownClient();
    }

    private async Task CloseAsync()
    {
        Stop();

        // Every dispatched request holds budget until its reply is written or abandoned: taking all of it back means
        // no handler still uses the upstream connection or a pooled buffer.
        for (var i = 0; i < _budgetUnits; i++)
        {
            await _budget.WaitAsync(CancellationToken.None);
        }

        await _upstream.DisposeAsync();
        Dispose();
    }

    /// <summary>Releases what <see cref="RunAsync"/> leaves once it has closed both connections.</summary>
    public void Dispose()
    {
        _client.Dispose();
        _stop.Dispose();
        _budget.Dispose();
        _sendLock.Dispose();
    }

    private void ShutdownClient()
    {
        try
        {
            _client.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
    }
}

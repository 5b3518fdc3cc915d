using Grpc.Backup.Transport.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;

namespace Grpc.Backup.Transport;

/// <summary>
/// The receiver side's table of received transfers (protos/README.md, "Ownership and
/// lifetime"). One per process side, shared by all its channels: an RPC may name a transfer
/// that arrived on any of them. Fds wait here until claimed by (token, index) or until the TTL
/// closes them; finished tokens are remembered so that they are never accepted again and late
/// claims get a precise answer.
/// </summary>
public sealed class FdTransferTable : IDisposable
{
    /// <summary>The protocol's default TTL for unclaimed fds.</summary>
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long the token of a finished transfer is remembered. Tokens are 128 random bits, so
    /// an honest sender never repeats one; the memory exists to answer late claims precisely and
    /// to catch buggy senders, and must not grow without bound in a long-running daemon.
    /// </summary>
    internal static readonly TimeSpan TombstoneRetention = TimeSpan.FromHours(24);

    /// <summary>
    /// The most unclaimed fds the table holds at once (a peer that sends the same fd 64 times per packet, packet after
    /// packet, never claims them). A transfer that would go beyond is rejected and its fds closed at once; an honest
    /// host has a few per guest in flight.
    /// </summary>
    public const int MaxOpenFds = 512;

    /// <summary>
    /// The most finished-transfer records (tombstones) kept. Beyond it the oldest are forgotten first: a flood of
    /// bogus tokens costs the sender, not the receiver's memory. A late claim of a forgotten token fails as unknown.
    /// </summary>
    public const int MaxRecords = 16384;

    private readonly Lock _lock = new();
    private readonly Dictionary<FdToken, TransferRecord> _records = [];
    private readonly Dictionary<FdToken, ArrivalSignal> _arrivals = [];
    private readonly TimeSpan _ttl;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private int _openFdCount;
    private DateTimeOffset _lastPrune;
    private bool _disposed;

    /// <param name="ttl">How long an unclaimed fd is held; 30 s by default.</param>
    /// <param name="timeProvider">The clock and timers; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="logger">Receives expiries and token reuses.</param>
    public FdTransferTable(TimeSpan? ttl = null, TimeProvider? timeProvider = null, ILogger? logger = null)
    {
        _ttl = ttl ?? DefaultTtl;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_ttl, TimeSpan.Zero, nameof(ttl));
        _time = timeProvider ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _lastPrune = _time.GetUtcNow();
    }

    /// <summary>How many transfer records (pending and finished) the table holds: bounded by <see cref="MaxRecords"/>.</summary>
    internal int RecordCount
    {
        get
        {
            lock (_lock)
            {
                return _records.Count;
            }
        }
    }

    /// <summary>How many received fds the table holds unclaimed right now.</summary>
    public int OpenFdCount
    {
        get
        {
            lock (_lock)
            {
                return _openFdCount;
            }
        }
    }

    /// <summary>
    /// Claims the fd at <paramref name="index"/> of transfer <paramref name="token"/>; from then
    /// on the caller owns it. A transfer that has not arrived yet is waited for up to
    /// <paramref name="waitForArrival"/>, because the packet may still be queued behind the RPC
    /// that names it. The fd is checked against <paramref name="expectedKind"/> (the declared
    /// kind must match it, and so must the fd itself); on a mismatch it is closed.
    /// </summary>
    /// <exception cref="FdClaimException">The claim failed; <see cref="FdClaimException.Failure"/> says why.</exception>
    public async ValueTask<PassedFd> ClaimAsync(
        FdToken token,
        int index,
        FdKind expectedKind,
        TimeSpan waitForArrival,
        CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(waitForArrival, TimeSpan.Zero);
        cancellationToken.ThrowIfCancellationRequested();
        long started = _time.GetTimestamp();
        bool waitedOut = false;
        while (true)
        {
            SafeFileHandle? fd = null;
            FdKind declared = default;
            ArrivalSignal? signal = null;
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_records.TryGetValue(token, out TransferRecord? record))
                {
                    (fd, declared) = TakeLocked(record, index);
                }
                else if (waitedOut)
                {
                    throw new FdClaimException(FdClaimFailure.UnknownTransfer, token, index);
                }
                else
                {
                    signal = WaitForLocked(token);
                }
            }

            if (fd is not null)
            {
                // Outside the lock: the kind check makes system calls.
                return Verify(fd, declared, token, index, expectedKind);
            }

            try
            {
                TimeSpan remaining = waitForArrival - _time.GetElapsedTime(started);
                if (remaining > TimeSpan.Zero)
                {
                    await signal!.Arrived.WaitAsync(remaining, _time, cancellationToken);
                }
                else
                {
                    waitedOut = true;
                }
            }
            catch (TimeoutException)
            {
                // One last look under the lock: the transfer may have arrived just now.
                waitedOut = true;
            }
            finally
            {
                StopWaitingFor(token, signal!);
            }
        }
    }

    /// <summary>Closes every fd still held. Pending and later claims throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        var toClose = new List<SafeFileHandle>();
        List<ArrivalSignal> signals;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            DateTimeOffset now = _time.GetUtcNow();
            foreach (TransferRecord record in _records.Values)
            {
                if (record.State == TransferState.Pending)
                {
                    toClose.AddRange(record.Settle(TransferState.Expired, now));
                }
            }

            _openFdCount = 0;
            signals = [.. _arrivals.Values];
            _arrivals.Clear();
        }

        Close(toClose);

        // Waiting claims wake up, see the table disposed and throw.
        foreach (ArrivalSignal signal in signals)
        {
            signal.Set();
        }
    }

    /// <summary>
    /// Takes ownership of a well-formed transfer's fds. A token seen before is rejected: its fds
    /// are closed and the existing record stays exactly as it was.
    /// </summary>
    internal bool Add(FdToken token, SafeFileHandle[] fds, FdKind[] kinds)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(kinds.Length, fds.Length, nameof(kinds));
        ArrivalSignal? signal = null;
        bool accepted = false;
        bool reused = false;
        bool overLimit = false;
        lock (_lock)
        {
            if (!_disposed && !_records.ContainsKey(token) && _openFdCount + fds.Length > MaxOpenFds)
            {
                // Remembered as rejected, so a claim of it fails precisely; its fds are closed below.
                overLimit = true;
                _records.Add(token, TransferRecord.Rejected(token, $"more than {MaxOpenFds} unclaimed fds", _time.GetUtcNow()));
                _arrivals.Remove(token, out signal);
                PruneIfDueLocked();
            }
            else if (!_disposed && !_records.ContainsKey(token))
            {
                TransferRecord record = TransferRecord.Pending(token, fds, kinds);
                _records.Add(token, record);
                _openFdCount += fds.Length;
                record.ExpiryTimer = _time.CreateTimer(
                    static state =>
                    {
                        (FdTransferTable table, TransferRecord expiring) = ((FdTransferTable, TransferRecord))state!;
                        table.Expire(expiring);
                    },
                    (this, record),
                    _ttl,
                    Timeout.InfiniteTimeSpan);
                _arrivals.Remove(token, out signal);
                accepted = true;
            }
            else
            {
                reused = !_disposed;
            }

            PruneIfDueLocked();
        }

        if (!accepted)
        {
            Close(fds);
            if (overLimit)
            {
                Log.TransferOverLimit(_logger, token, fds.Length, MaxOpenFds);
            }
            else if (reused)
            {
                Log.TokenReused(_logger, token, fds.Length);
            }
        }

        signal?.Set();
        return accepted;
    }

    /// <summary>
    /// Remembers a rejected transfer (whose fds the channel closed already), so that a claim
    /// naming it fails as <see cref="FdClaimFailure.Rejected"/>. A token seen before keeps
    /// its existing record: a bad packet must not be able to disturb a good transfer.
    /// </summary>
    internal void Reject(FdToken token, string reason)
    {
        ArrivalSignal? signal = null;
        lock (_lock)
        {
            if (_disposed || _records.ContainsKey(token))
            {
                return;
            }

            _records.Add(token, TransferRecord.Rejected(token, reason, _time.GetUtcNow()));
            _arrivals.Remove(token, out signal);
            PruneIfDueLocked();
        }

        signal?.Set();
    }

    private ArrivalSignal WaitForLocked(FdToken token)
    {
        if (!_arrivals.TryGetValue(token, out ArrivalSignal? signal))
        {
            signal = new ArrivalSignal();
            _arrivals.Add(token, signal);
        }

        signal.Waiters++;
        return signal;
    }

    private void StopWaitingFor(FdToken token, ArrivalSignal signal)
    {
        lock (_lock)
        {
            if (--signal.Waiters == 0 && _arrivals.TryGetValue(token, out ArrivalSignal? current) && current == signal)
            {
                _arrivals.Remove(token);
            }
        }
    }

    private (SafeFileHandle Fd, FdKind Declared) TakeLocked(TransferRecord record, int index)
    {
        FdToken token = record.Token;
        switch (record.State)
        {
            case TransferState.Rejected:
                throw new FdClaimException(FdClaimFailure.Rejected, token, index, record.RejectionReason);
            case TransferState.Expired:
                throw new FdClaimException(FdClaimFailure.Expired, token, index);
        }

        if ((uint)index >= (uint)record.Kinds.Length)
        {
            throw new FdClaimException(
                FdClaimFailure.IndexOutOfRange, token, index, detail: $"it carried {record.Kinds.Length} fd(s)");
        }

        SafeFileHandle? fd = record.Fds?[index] ?? throw new FdClaimException(FdClaimFailure.AlreadyClaimed, token, index);
        record.Fds![index] = null;
        record.Remaining--;
        _openFdCount--;
        if (record.Remaining == 0)
        {
            record.Settle(TransferState.Completed, _time.GetUtcNow());
        }

        return (fd, record.Kinds[index]);
    }

    private static PassedFd Verify(SafeFileHandle fd, FdKind declared, FdToken token, int index, FdKind expectedKind)
    {
        string? mismatch = declared != expectedKind
            ? $"declared {declared}, expected {expectedKind}"
            : FdKindCheck.Mismatch(fd, expectedKind) is { } actual ? $"declared {declared} but it is {actual}" : null;
        if (mismatch is not null)
        {
            fd.Dispose();
            throw new FdClaimException(FdClaimFailure.KindMismatch, token, index, detail: mismatch);
        }

        return new PassedFd(fd, expectedKind, token, index);
    }

    private void Expire(TransferRecord record)
    {
        List<SafeFileHandle> toClose;
        lock (_lock)
        {
            if (record.State != TransferState.Pending || _disposed)
            {
                // Claimed completely (or the table went away) just before the timer fired.
                return;
            }

            toClose = record.Settle(TransferState.Expired, _time.GetUtcNow());
            _openFdCount -= toClose.Count;
        }

        Close(toClose);
        Log.TransferExpired(_logger, record.Token, toClose.Count);
    }

    private void PruneIfDueLocked()
    {
        // Amortised: one pass over the table at most every 1/24 of the retention, or when it holds too many records.
        DateTimeOffset now = _time.GetUtcNow();
        if (_records.Count > MaxRecords)
        {
            // The oldest finished records go first, down to 3/4 of the cap so this runs rarely.
            foreach (FdToken token in _records.Where(r => r.Value.State != TransferState.Pending)
                .OrderBy(r => r.Value.SettledAt).Take(_records.Count - MaxRecords * 3 / 4).Select(r => r.Key).ToList())
            {
                _records.Remove(token);
            }
        }
        if (now - _lastPrune < TombstoneRetention / 24)
        {
            return;
        }

        _lastPrune = now;
        var stale = new List<FdToken>();
        foreach ((FdToken token, TransferRecord record) in _records)
        {
            if (record.State != TransferState.Pending && now - record.SettledAt >= TombstoneRetention)
            {
                stale.Add(token);
            }
        }

        foreach (FdToken token in stale)
        {
            _records.Remove(token);
        }
    }

    private static void Close(IEnumerable<SafeFileHandle> fds)
    {
        foreach (SafeFileHandle fd in fds)
        {
            fd.Dispose();
        }
    }
}

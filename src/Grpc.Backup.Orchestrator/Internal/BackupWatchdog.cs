namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// Bounds a backup's data stream (issue 15: nothing waits forever): <see cref="Token"/> is cancelled when the provider
/// reports no progress for the inactivity timeout, or when the fleecing filesystem's free space drops below the reserve
/// (copy-before-write must never be the one that meets ENOSPC: the guest would see the stall or the error). The caller
/// passes <see cref="Token"/> to the call and turns the cancellation into <see cref="Failure"/>.
/// </summary>
internal sealed class BackupWatchdog : IDisposable
{
    private static readonly TimeSpan s_spacePoll = TimeSpan.FromMilliseconds(200);

    private readonly CancellationTokenSource _cancel;
    private readonly TimeSpan _inactivity;
    private readonly string? _fleecingDirectory;
    private readonly ulong _fleecingReserve;
    private readonly ITimer? _spaceTimer;
    private volatile string? _reason;
    private volatile bool _ownCancel;
    private readonly CancellationToken _caller;
    private readonly string _operation;

    public BackupWatchdog(TimeSpan inactivity, string? fleecingDirectory, ulong fleecingReserve, CancellationToken cancellationToken,
        string operation = "backup")
    {
        _operation = operation;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _caller = cancellationToken;
        _inactivity = inactivity;
        _fleecingDirectory = fleecingDirectory;
        _fleecingReserve = fleecingReserve;
        if (inactivity > TimeSpan.Zero)
        {
            _cancel.Token.Register(() => _reason ??= cancellationToken.IsCancellationRequested || _ownCancel ? null : InactivityReason);
            _cancel.CancelAfter(inactivity);
        }
        if (fleecingDirectory is not null && fleecingReserve > 0)
        {
            _spaceTimer = TimeProvider.System.CreateTimer(_ => CheckSpace(), null, TimeSpan.Zero, s_spacePoll);
        }
    }

    public CancellationToken Token => _cancel.Token;

    /// <summary>Why the watchdog cancelled the backup, or null if it did not (the caller's own cancellation, or none).</summary>
    /// <remarks>
    /// Read from the state, not only from the token's callback: callbacks run newest first, so the cancelled call's own
    /// registration may fail the stream before the watchdog's callback has recorded why.
    /// </remarks>
    public string? Reason => _reason ?? (_inactivity > TimeSpan.Zero && _cancel.IsCancellationRequested && !_caller.IsCancellationRequested && !_ownCancel
        ? InactivityReason
        : null);

    private string InactivityReason =>
        $"the provider reported no progress for {_inactivity.TotalSeconds:0.#} s (provider-inactivity-timeout); the {_operation} was cancelled";

    /// <summary>The provider made progress: the inactivity timeout starts over.</summary>
    public void Kick()
    {
        if (_inactivity > TimeSpan.Zero && _reason is null)
        {
            try
            {
                _cancel.CancelAfter(_inactivity);
            }
            catch (ObjectDisposedException)
            {
                // The stream ended meanwhile.
            }
        }
    }

    /// <summary>Cancels the backup for the caller's own reason (e.g. its worker failed): <see cref="Reason"/> stays null.</summary>
    public Task CancelAsync()
    {
        _ownCancel = true;
        return _cancel.CancelAsync();
    }

    /// <summary>A <see cref="BackupException"/> that names the reason, when the watchdog fired; else null.</summary>
    public BackupException? Failure => Reason is { } reason ? new BackupException(reason) : null;

    public void Dispose()
    {
        _spaceTimer?.Dispose();
        _cancel.Dispose();
    }

    private void CheckSpace()
    {
        if (_cancel.IsCancellationRequested)
        {
            return;
        }
        long free;
        try
        {
            free = new DriveInfo(_fleecingDirectory!).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return; // Not measurable now; the next poll tries again.
        }
        if ((ulong)Math.Max(free, 0) < _fleecingReserve)
        {
            _reason ??= $"the fleecing filesystem of {_fleecingDirectory} has {free} bytes free, below the reserve of {_fleecingReserve} "
                + "(fleecing-reserve); the backup was aborted before the guest could see ENOSPC";
            try
            {
                _cancel.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }
}

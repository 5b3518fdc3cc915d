using System.Threading.Tasks.Sources;

namespace Grpc.Backup.Nbd.Internal;

/// <summary>
/// One reusable request slot. The issuing caller fills in what it asked for, the reply reader
/// records what came back, and the caller awaits it as a <see cref="ValueTask"/> without allocating.
/// Lifecycle flags are only touched under the <see cref="NbdRequestTable"/> lock.
/// </summary>
internal sealed class NbdRequest : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core;
    private uint _generation;

    public NbdRequest(NbdRequestTable table, int index)
    {
        Table = table;
        Index = index;

        // Never run the caller's continuation on the reply-reader loop: the caller may go on to
        // send another request, and blocking the reader behind a send can deadlock with a
        // server that is itself blocked sending us replies.
        _core.RunContinuationsAsynchronously = true;
    }

    public NbdRequestTable Table { get; }

    public int Index { get; }

    /// <summary>
    /// Wire handle: slot index in the low half, a per-slot generation in the high half so a
    /// reply for an earlier use of the slot can never be mistaken for the current one.
    /// </summary>
    public ulong Cookie { get; private set; }

    // What was asked, set by the issuing caller before the request is sent.
    public NbdCommand Command { get; set; }

    public ushort Flags { get; set; }

    public long Offset { get; set; }

    public uint Length { get; set; }

    public Memory<byte> ReadBuffer { get; set; }

    public uint ContextId { get; set; }

    public List<NbdExtent>? Extents { get; set; }

    public CancellationToken CancellationToken { get; set; }

    // Reply state, touched only by the reply reader while the request is on the wire.
    public ReadCoverage Coverage;

    public Exception? Error { get; set; }

    public ulong ContextsSeen { get; set; }

    public bool TargetContextSeen { get; set; }

    // Lifecycle, guarded by the table lock.
    public bool CallerOwned { get; set; }

    public bool WireOwned { get; set; }

    public bool Completed { get; set; }

    public bool ReaderBusy { get; set; }

    public bool Abandoned { get; set; }

    public ValueTask AsValueTask() => new(this, _core.Version);

    public void Prepare()
    {
        _generation++;
        Cookie = ((ulong)_generation << 32) | (uint)Index;
        _core.Reset();
        Command = default;
        Flags = 0;
        Offset = 0;
        Length = 0;
        ReadBuffer = default;
        ContextId = 0;
        Extents = null;
        CancellationToken = default;
        Coverage.Reset();
        Error = null;
        ContextsSeen = 0;
        TargetContextSeen = false;
        CallerOwned = true;
        WireOwned = false;
        Completed = false;
        ReaderBusy = false;
        Abandoned = false;
    }

    public void SetResult() => _core.SetResult(true);

    public void SetException(Exception exception) => _core.SetException(exception);

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}

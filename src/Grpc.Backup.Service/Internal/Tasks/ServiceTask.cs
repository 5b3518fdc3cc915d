using System.Threading.Channels;
using Google.Protobuf.WellKnownTypes;
using Grpc.Backup.Management.V1;

namespace Grpc.Backup.Service.Internal.Tasks;

/// <summary>
/// One unit of work the service runs (a job, a one-off backup, a restore): its state, per-guest results, the log
/// lines so far and the live watchers. Cancel is cooperative: it only cancels <see cref="Cancellation"/>, and the
/// work itself runs its teardown.
/// </summary>
internal sealed class ServiceTask : IDisposable
{
    private const int MaxKeptLines = 20_000;

    private readonly Lock _lock = new();
    private readonly List<TaskEvent> _lines = [];
    private readonly List<Channel<TaskEvent>> _watchers = [];
    private readonly Dictionary<string, GuestResult> _guests = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _cancellation = new();
    private TaskState _state = TaskState.Queued;
    private string _error = "";
    private DateTime? _ended;

    public ServiceTask(string kind, string job, string storage)
    {
        Kind = kind;
        Job = job;
        Storage = storage;
    }

    public string Id { get; } = Guid.NewGuid().ToString();

    public string Kind { get; }

    public string Job { get; }

    public string Storage { get; }

    public DateTime Created { get; } = DateTime.UtcNow;

    public CancellationToken Cancellation => _cancellation.Token;

    public bool IsFinished
    {
        get
        {
            lock (_lock)
            {
                return _ended is not null;
            }
        }
    }

    /// <summary>Invoked for every line, after it is recorded (the per-guest log files of the job engine).</summary>
    public event Action<LogLine>? LineWritten;

    public void Cancel()
    {
        lock (_lock)
        {
            if (_ended is not null)
            {
                return;
            }
        }
        Log("WARN", "", "cancel requested; the running backup stops at its next step and tears down");
        _cancellation.Cancel();
    }

    public void SetRunning()
    {
        lock (_lock)
        {
            _state = TaskState.Running;
        }
    }

    public void SetGuest(GuestResult result)
    {
        lock (_lock)
        {
            _guests[result.GuestId] = result;
        }
    }

    public void Log(string level, string guestId, string message)
    {
        var line = new LogLine { Time = Timestamp.FromDateTime(DateTime.UtcNow), Level = level, GuestId = guestId, Message = message };
        var e = new TaskEvent { Log = line };
        lock (_lock)
        {
            if (_lines.Count < MaxKeptLines)
            {
                _lines.Add(e);
            }
            Publish(e);
        }
        LineWritten?.Invoke(line);
    }

    public void Progress(string guestId, string device, ulong done, ulong total)
    {
        lock (_lock)
        {
            Publish(new TaskEvent { Progress = new Management.V1.Progress { GuestId = guestId, DeviceName = device, BytesDone = done, BytesTotal = total } });
        }
    }

    public void End(TaskState state, string error)
    {
        lock (_lock)
        {
            if (_ended is not null)
            {
                return;
            }
            _state = state;
            _error = error;
            _ended = DateTime.UtcNow;
            Publish(new TaskEvent { Ended = new TaskEnded { Task = InfoLocked() } });
            foreach (Channel<TaskEvent> watcher in _watchers)
            {
                watcher.Writer.TryComplete();
            }
            _watchers.Clear();
        }
    }

    public void Dispose() => _cancellation.Dispose();

    public TaskInfo Info()
    {
        lock (_lock)
        {
            return InfoLocked();
        }
    }

    /// <summary>Every line so far, then live events, then the end; completes when the task ends.</summary>
    public async IAsyncEnumerable<TaskEvent> WatchAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Channel<TaskEvent> channel = Channel.CreateBounded<TaskEvent>(new BoundedChannelOptions(10_000)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        TaskEvent[] history;
        TaskEvent? ended = null;
        lock (_lock)
        {
            history = [.. _lines];
            if (_ended is null)
            {
                _watchers.Add(channel);
            }
            else
            {
                ended = new TaskEvent { Ended = new TaskEnded { Task = InfoLocked() } };
            }
        }
        foreach (TaskEvent e in history)
        {
            yield return e;
        }
        if (ended is not null)
        {
            yield return ended;
            yield break;
        }
        try
        {
            await foreach (TaskEvent e in channel.Reader.ReadAllAsync(cancellationToken))
            {
                yield return e;
            }
        }
        finally
        {
            lock (_lock)
            {
                _watchers.Remove(channel);
            }
        }
    }

    private void Publish(TaskEvent e)
    {
        foreach (Channel<TaskEvent> watcher in _watchers)
        {
            watcher.Writer.TryWrite(e);
        }
    }

    private TaskInfo InfoLocked()
    {
        var info = new TaskInfo
        {
            TaskId = Id,
            Kind = Kind,
            Job = Job,
            State = _state,
            Created = Timestamp.FromDateTime(Created),
            Error = _error,
        };
        if (_ended is { } ended)
        {
            info.Ended = Timestamp.FromDateTime(ended);
        }
        info.Guests.AddRange(_guests.Values.OrderBy(g => g.GuestId, StringComparer.Ordinal).Select(g => g.Clone()));
        return info;
    }
}

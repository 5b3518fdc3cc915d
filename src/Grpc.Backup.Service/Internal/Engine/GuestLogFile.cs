using System.Globalization;
using Grpc.Backup.Management.V1;
using Grpc.Backup.Service.Internal.Tasks;

namespace Grpc.Backup.Service.Internal.Engine;

/// <summary>
/// One guest's lines of a task, kept as a root-only file (vzdump's per-guest log), which the log-end hook receives
/// as LOGFILE. (The provider gets the runner's own task log through BackupHandleLogFile.)
/// </summary>
internal sealed class GuestLogFile : IDisposable
{
    private readonly ServiceTask _task;
    private readonly string _guestId;
    private readonly StreamWriter _writer;
    private readonly Lock _lock = new();
    private bool _closed;

    public GuestLogFile(ServiceTask task, string guestId, string path)
    {
        _task = task;
        _guestId = guestId;
        _writer = new StreamWriter(new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        })) { AutoFlush = true };
        task.LineWritten += OnLine;
    }

    public void Close()
    {
        _task.LineWritten -= OnLine;
        lock (_lock)
        {
            if (!_closed)
            {
                _closed = true;
                _writer.Dispose();
            }
        }
    }

    public void Dispose() => Close();

    private void OnLine(LogLine line)
    {
        if (line.GuestId != _guestId && line.GuestId.Length > 0)
        {
            return;
        }
        lock (_lock)
        {
            if (!_closed)
            {
                _writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{line.Time.ToDateTime():yyyy-MM-ddTHH:mm:ss.fffZ} {line.Level}: {line.Message}"));
            }
        }
    }
}

using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// The task log of one guest's backup: every line goes to the host's logger and to a private file that is handed to
/// the provider at the end (BackupHandleLogFile), as vzdump's per-guest log is. Lines carry provider text, so each is
/// sanitised (<see cref="Protocol.ProviderText"/>: no escape sequences, no forged lines, at most 4 KiB) and the file is
/// capped at <see cref="MaxFileBytes"/>: beyond it one marker line is written and the rest goes to the logger only
/// (which the journal rate-limits).
/// </summary>
internal sealed class TaskLog : IDisposable
{
    /// <summary>The most a task log file holds (in /run or the state directory, whatever the provider sends).</summary>
    public const long MaxFileBytes = 8 << 20;

    private readonly ILogger _logger;
    private readonly StreamWriter _writer;
    private readonly Lock _lock = new();
    private long _written;
    private bool _capped;
    private bool _closed;

    public TaskLog(string path, ILogger logger)
    {
        Path = path;
        _logger = logger;
        var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        _writer = new StreamWriter(stream) { AutoFlush = true };
    }

    public string Path { get; }

    public void Info(string message) => Write(LogLevel.Information, "INFO", message);

    public void Warn(string message) => Write(LogLevel.Warning, "WARN", message);

    public void Error(string message) => Write(LogLevel.Error, "ERROR", message);

    /// <summary>Closes the file; later lines (a settlement after the hand-off) still reach the host's logger.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _closed = true;
            _writer.Dispose();
        }
    }

    private void Write(LogLevel level, string tag, string message)
    {
        message = Protocol.ProviderText.Sanitize(message);
#pragma warning disable CA2254 // the task log line is the message; it has no template
        _logger.Log(level, message);
#pragma warning restore CA2254
        lock (_lock)
        {
            if (_capped || _closed)
            {
                return;
            }
            string line = string.Create(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {tag}: {message}");
            _written += line.Length + 1;
            if (_written > MaxFileBytes)
            {
                _capped = true;
                line = string.Create(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} WARN: task log reached {MaxFileBytes} bytes; further lines are in the host's log only");
            }
            _writer.WriteLine(line);
        }
    }
}

using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Service.Internal.Tasks;

/// <summary>
/// The logger handed to a runner for one guest: each line goes to the service's log and into the task, so watchers
/// and the per-guest log file see what the runner's own task log holds.
/// </summary>
internal sealed class TaskLogger<T>(ServiceTask task, string guestId, ILogger inner) : ILogger<T>
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        if (!IsEnabled(logLevel))
        {
            return;
        }
        string message = formatter(state, exception);
        inner.Log(logLevel, eventId, "[{Task} {Guest}] {Message}", task.Id[..8], guestId, message);
        task.Log(logLevel switch { >= LogLevel.Error => "ERROR", LogLevel.Warning => "WARN", _ => "INFO" }, guestId, message);
        TestPausePoint.Reached(message);
    }
}

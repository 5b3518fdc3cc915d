using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>Records every line a runner logs with the time it was logged, to measure how long a step took.</summary>
internal sealed class TimedLogger<T> : ILogger<T>
{
    private readonly ConcurrentQueue<(DateTime At, string Line)> _lines = new();

    public IReadOnlyList<(DateTime At, string Line)> Lines => [.. _lines];

    /// <summary>When the first line containing <paramref name="part"/> was logged.</summary>
    public DateTime FirstTime(string part) =>
        _lines.FirstOrDefault(l => l.Line.Contains(part, StringComparison.Ordinal)) is { Line: not null } found
            ? found.At
            : throw new InvalidOperationException($"no line contains '{part}':\n{string.Join('\n', _lines.Select(l => l.Line))}");

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _lines.Enqueue((DateTime.UtcNow, formatter(state, exception)));
}

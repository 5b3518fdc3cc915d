using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>
/// A logger that runs <paramref name="onStep"/> synchronously, on the logging thread, when a line containing
/// <paramref name="step"/> is logged: the runner waits at that step until the action (e.g. a provider restart) is done.
/// </summary>
internal sealed class StepLogger<T>(string step, Action onStep) : ILogger<T>
{
    private int _fired;

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (formatter(state, exception).Contains(step, StringComparison.Ordinal) && Interlocked.Exchange(ref _fired, 1) == 0)
        {
            onStep();
        }
    }
}

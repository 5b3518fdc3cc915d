using Grpc.Core;

namespace Grpc.Backup.Protocol;

/// <summary>
/// How every program of the project reports a failure it did not expect: one line on stderr, never a stack trace,
/// unless <c>GRPC_BACKUP_DEBUG=1</c> asks for it (a developer's switch; the debug log has the rest).
/// </summary>
public static class ProgramFailure
{
    /// <summary>The environment variable that turns stack traces on.</summary>
    public const string DebugVariable = "GRPC_BACKUP_DEBUG";

    /// <summary>True when <see cref="DebugVariable"/> is <c>1</c>.</summary>
    public static bool StackTraces => Environment.GetEnvironmentVariable(DebugVariable) == "1";

    /// <summary>
    /// One line describing <paramref name="exception"/>: for a gRPC failure its status, its machine-readable reason and
    /// its message (provider text, sanitised); otherwise the message and, for wrapped failures, the innermost cause.
    /// </summary>
    public static string Describe(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (exception is AggregateException { InnerExceptions.Count: 1 } aggregate)
        {
            exception = aggregate.InnerExceptions[0];
        }
        if (exception is RpcException rpc)
        {
            string reason = rpc.GetReason(out string? raw) is { } known ? $" ({ProviderErrors.ReasonName(known)})" : raw is null ? "" : $" ({ProviderText.Sanitize(raw, 64)})";
            return $"{StatusName(rpc.StatusCode)}{reason}: {ProviderText.Sanitize(rpc.Status.Detail, 1024)}";
        }
        string message = ProviderText.Sanitize(exception.Message, 1024);
        Exception? inner = exception.InnerException;
        while (inner?.InnerException is not null)
        {
            inner = inner.InnerException;
        }
        return inner is null || message.Contains(inner.Message, StringComparison.Ordinal)
            ? message
            : $"{message}: {ProviderText.Sanitize(inner.Message, 512)}";
    }

    /// <summary>Writes <c>PROGRAM: description</c> (and the stack trace when asked for) to stderr.</summary>
    public static void Report(string program, Exception exception)
    {
        Console.Error.WriteLine($"{program}: {Describe(exception)}");
        if (StackTraces)
        {
            Console.Error.WriteLine(exception.ToString());
        }
    }

    /// <summary>The status as the contract writes it: <c>FAILED_PRECONDITION</c>, not <c>FailedPrecondition</c>.</summary>
    public static string StatusName(StatusCode code) =>
        string.Concat(code.ToString().Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : c.ToString())).ToUpperInvariant();
}

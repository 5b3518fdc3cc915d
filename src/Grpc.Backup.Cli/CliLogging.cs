using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Grpc.Backup.Cli;

/// <summary>Log lines go to stderr, so stdout carries only the command's result (and stays parseable with --json).</summary>
internal static class CliLogging
{
    public static ILoggerFactory Create(bool verbose) => LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information);
        builder.AddFilter("Grpc", LogLevel.Warning);
        builder.AddFilter("System.Net.Http", LogLevel.Warning);
        builder.AddFilter("Grpc.Backup", verbose ? LogLevel.Debug : LogLevel.Information);
        builder.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    });
}

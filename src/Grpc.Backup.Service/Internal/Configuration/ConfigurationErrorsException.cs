using Grpc.Backup.Orchestrator.Inventory;

namespace Grpc.Backup.Service.Internal.Configuration;

/// <summary>The configuration directory has errors; <see cref="Exception.Message"/> lists each as <c>file:line: reason</c>.</summary>
internal sealed class ConfigurationErrorsException(IReadOnlyList<ConfigException> errors)
    : Exception(string.Join('\n', errors.Select(e => e.Message)))
{
    public IReadOnlyList<ConfigException> Errors { get; } = errors;
}

using System.Text.RegularExpressions;
using Grpc.Backup.Protocol;

namespace Grpc.Backup.Conformance;

/// <summary>What to check and where to work.</summary>
public sealed class ConformanceOptions
{
    /// <summary>The provider under test.</summary>
    public required ProviderEndpoint Endpoint { get; init; }

    /// <summary>Runs only the checks whose name matches; the others are reported as skipped.</summary>
    public Regex? Only { get; init; }

    /// <summary>
    /// The parent of the scratch directory (scratch guest, fleecing images, restore targets); the system's temporary
    /// directory when null. It needs room for a few times 40 MiB and must support punch-hole.
    /// </summary>
    public string? ScratchParent { get; init; }

    /// <summary>The longest any single check may take before it fails.</summary>
    public TimeSpan CheckTimeout { get; init; } = TimeSpan.FromMinutes(3);
}

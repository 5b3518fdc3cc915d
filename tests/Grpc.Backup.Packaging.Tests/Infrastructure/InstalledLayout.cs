namespace Grpc.Backup.Packaging.Tests.Infrastructure;

/// <summary>
/// Where build/install puts each program (the paths the units name), and where this checkout built the same program.
/// A test that follows a unit swaps one for the other; nothing else of the unit is changed.
/// </summary>
internal static class InstalledLayout
{
    public const string LibraryDirectory = "/usr/lib/grpc-backup";

    /// <summary>Installed program (relative to <see cref="LibraryDirectory"/>) to the program this checkout built.</summary>
    public static IReadOnlyDictionary<string, string> Programs { get; } = new Dictionary<string, string>
    {
        ["service/grpc-backupd"] = Built("src/Grpc.Backup.Service", "grpc-backupd"),
        ["providers/directory/grpc-backup-provider-directory"] = Built("providers/directory", "grpc-backup-provider-directory"),
        ["providers/borg/grpc-backup-provider-borg"] = Built("providers/borg", "grpc-backup-provider-borg"),
        ["providers/restic/grpc-backup-provider-restic"] = RepoPaths.ResticProvider,
    };

    /// <summary>The built program for an installed path, or null when the path is not one of the installed programs.</summary>
    public static string? BuiltProgram(string installedPath) =>
        installedPath.StartsWith(LibraryDirectory + "/", StringComparison.Ordinal)
        && Programs.TryGetValue(installedPath[(LibraryDirectory.Length + 1)..], out string? built) ? built : null;

    private static string Built(string project, string apphost) =>
        Path.Combine(RepoPaths.Root, project, "bin", RepoPaths.Configuration, "net10.0", apphost);
}

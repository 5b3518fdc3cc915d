namespace Grpc.Backup.Tests.Shared;

/// <summary>Paths inside the repository, found from the test assembly's location.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string Protos => Path.Combine(Root, "protos");

    /// <summary>"Debug" or "Release": the configuration the tests were built in, so they start the same build of a provider.</summary>
    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains("/bin/Release/", StringComparison.Ordinal) ? "Release" : "Debug";

    public static string DirectoryProviderDll =>
        Path.Combine(Root, "providers", "directory", "bin", Configuration, "net10.0", "grpc-backup-provider-directory.dll");

    public static string BorgProviderDll =>
        Path.Combine(Root, "providers", "borg", "bin", Configuration, "net10.0", "grpc-backup-provider-borg.dll");

    /// <summary>The restic provider's launcher (Python; generates its stubs with <see cref="ResticStubGenerator"/>).</summary>
    public static string ResticProvider => Path.Combine(Root, "providers", "restic", "grpc-backup-provider-restic");

    public static string ResticStubGenerator => Path.Combine(Root, "providers", "restic", "generate-stubs");

    /// <summary>The provider conformance kit (grpc-backup-conformance).</summary>
    public static string ConformanceDll =>
        Path.Combine(Root, "src", "Grpc.Backup.Conformance", "bin", Configuration, "net10.0", "grpc-backup-conformance.dll");

    public static string DemoGuestDll =>
        Path.Combine(Root, "build", "Grpc.Backup.DemoGuest", "bin", Configuration, "net10.0", "grpc-backup-demo-guest.dll");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Grpc.Backup.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("cannot find the repository root above " + AppContext.BaseDirectory);
    }
}

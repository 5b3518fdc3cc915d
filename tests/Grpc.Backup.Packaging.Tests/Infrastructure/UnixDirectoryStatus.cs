using System.Globalization;

namespace Grpc.Backup.Packaging.Tests.Infrastructure;

/// <summary>The owner of a path, read with stat(1) (.NET exposes the mode but not the owner).</summary>
internal sealed class UnixDirectoryStatus
{
    public UnixDirectoryStatus(string path)
    {
        using var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u %g", path])
        {
            RedirectStandardOutput = true,
        })!;
        string[] fields = stat.StandardOutput.ReadToEnd().Trim().Split(' ');
        stat.WaitForExit();
        if (stat.ExitCode != 0 || fields.Length != 2)
        {
            throw new IOException($"stat {path} failed");
        }
        Uid = int.Parse(fields[0], CultureInfo.InvariantCulture);
        Gid = int.Parse(fields[1], CultureInfo.InvariantCulture);
    }

    public int Uid { get; }

    public int Gid { get; }
}

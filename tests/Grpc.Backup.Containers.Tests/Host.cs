using System.Diagnostics;

namespace Grpc.Backup.Containers.Tests;

/// <summary>Runs host commands (as root) from argument lists for test setup and inspection.</summary>
internal static class Host
{
    public static string Run(string fileName, params string[] arguments)
    {
        (int exitCode, string stdout, string stderr) = TryRun(fileName, arguments);
        Assert.True(exitCode == 0, $"{fileName} {string.Join(' ', arguments)} exited {exitCode}: {stderr}");
        return stdout;
    }

    public static (int ExitCode, string StandardOutput, string StandardError) TryRun(string fileName, params string[] arguments)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        info.Environment["LC_ALL"] = "C";
        using Process process = Process.Start(info)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr);
    }

    /// <summary>Runs a command inside a namespace (as the container's root) and returns its stdout.</summary>
    public static async Task<string> RunInAsync(UserNamespace ns, string fileName, params string[] arguments)
    {
        using Process process = ns.Command(fileName, arguments).Start();
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{fileName} {string.Join(' ', arguments)} in the namespace exited {process.ExitCode}: {stderr}");
        return await stdout;
    }

    public static void Chown(string path, int uid, int gid) => Run("chown", "-h", $"{uid}:{gid}", path);

    public static void Chmod(string path, string mode) => Run("chmod", mode, path);

    /// <summary>Lines of /proc/self/mountinfo that mention <paramref name="path"/>.</summary>
    public static IReadOnlyList<string> MountsUnder(string path) =>
        File.ReadAllLines("/proc/self/mountinfo").Where(l => l.Contains(path, StringComparison.Ordinal)).ToList();
}

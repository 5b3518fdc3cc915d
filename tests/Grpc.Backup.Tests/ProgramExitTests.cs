using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Tests.Infrastructure;
using Grpc.Core;

namespace Grpc.Backup.Tests;

/// <summary>
/// Every program answers a user's mistake, a missing file or a provider's refusal with one line and its documented
/// exit status, never a stack trace: grpc-backup, grpc-backupd, the three providers and grpc-backup-conformance.
/// </summary>
public sealed class ProgramExitTests
{
    private static string Dll(string project, string name) =>
        Path.Combine(RepoPaths.Root, "src", project, "bin", RepoPaths.Configuration, "net10.0", name + ".dll");

    private static readonly string Cli = Dll("Grpc.Backup.Cli", "grpc-backup");
    private static readonly string Service = Dll("Grpc.Backup.Service", "grpc-backupd");

    public static TheoryData<string, string[], int, string> UsageErrors => new()
    {
        { "grpc-backup", [Cli, "backup", "--no-such-option"], 2, "--no-such-option" },
        { "grpc-backup", [Cli, "backup", "--endpoint", "unix:/nonexistent/p.sock", "--inventory", "/nonexistent/inventory", "--guest", "100", "--fleecing-dir", "/tmp"], 2, "/nonexistent/inventory" },
        { "grpc-backup", [Cli, "status", "--socket", "/nonexistent/grpc-backupd.sock"], 5, "/nonexistent/grpc-backupd.sock" },
        { "grpc-backupd", [Service, "--no-such-option"], 2, "--no-such-option" },
        { "grpc-backupd", [Service, "--config", "/nonexistent/config", "--socket", "/nonexistent/s.sock"], 78, "/nonexistent/config" },
        { "grpc-backup-provider-directory", [RepoPaths.DirectoryProviderDll, "--listen", "unix:/nonexistent/p.sock"], 2, "--repository" },
        { "grpc-backup-provider-directory", [RepoPaths.DirectoryProviderDll, "--repository", "/srv/x", "--vm-mechanism", "carrier-pigeon"], 2, "--vm-mechanism" },
        { "grpc-backup-provider-borg", [RepoPaths.BorgProviderDll, "--listen", "unix:/nonexistent/p.sock"], 2, "--repository" },
        { "grpc-backup-conformance", [RepoPaths.ConformanceDll, "--no-such-option"], 2, "--no-such-option" },
        { "grpc-backup-conformance", [RepoPaths.ConformanceDll, "--provider", "unix:/nonexistent/p.sock", "--scratch", "/nonexistent/scratch"], 2, "scratch" },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public async Task A_mistake_is_one_line_and_a_documented_exit_status(string program, string[] arguments, int exit, string named)
    {
        var (code, _, stderr) = await ChildProcess.RunAsync("dotnet", arguments, timeout: TimeSpan.FromMinutes(3));

        AssertOneLine(program, stderr, named);
        Assert.True(code == exit, $"{program} exited {code}, not {exit}: {stderr}");
    }

    [Fact]
    public async Task The_restic_provider_answers_a_mistake_with_its_usage_and_status_2()
    {
        Assert.Equal(0, (await ChildProcess.RunAsync(RepoPaths.ResticStubGenerator, [])).ExitCode);
        var (missing, _, missingErr) = await ChildProcess.RunAsync(RepoPaths.ResticProvider, ["--listen", "unix:/nonexistent/p.sock"]);
        AssertOneLine("grpc-backup-provider-restic", missingErr, "--repository");
        Assert.Equal(2, missing);

        var (malformed, _, malformedErr) = await ChildProcess.RunAsync(RepoPaths.ResticProvider, ["--listen", "unix:/nonexistent/p.sock"],
            new Dictionary<string, string?> { ["RESTIC_CONNECTIONS"] = "many" });
        AssertOneLine("grpc-backup-provider-restic", malformedErr, "many");
        Assert.Equal(2, malformed);
    }

    [Fact]
    public async Task A_refused_backup_is_one_line_with_status_reason_and_message_and_exit_3()
    {
        await using var provider = await InProcessProvider.StartAsync();
        provider.Backup.JobInitRefusal = ProviderErrors.Create(ErrorReason.RepositoryLocked,
            "repository locked by host pve2\u001b[31m (pid 42)\nforged line");
        using var work = new TempDirectory();
        Directory.CreateDirectory(work.File("inventory"));
        await File.WriteAllTextAsync(work.File("inventory/100.conf"),
            "type: vm\nqmp: /nonexistent/qmp.sock\ndisk: drive-a file=/nonexistent/a.raw format=raw node=fmt0 filter=top0\n");

        var (code, _, stderr) = await ChildProcess.RunAsync("dotnet", [Cli, "backup", "--endpoint", provider.Endpoint.ToString(),
            "--inventory", work.File("inventory"), "--guest", "100", "--fleecing-dir", work.Path], timeout: TimeSpan.FromMinutes(3));

        AssertOneLine("grpc-backup", stderr, "ABORTED (REPOSITORY_LOCKED): repository locked by host pve2");
        // JobCleanup follows a failed JobInit too (backup.proto), so the provider can release what it began.
        Assert.Equal(1, provider.Backup.JobCleanupCalls);
        Assert.DoesNotContain("\u001b", stderr, StringComparison.Ordinal);
        Assert.Contains("forged line", stderr, StringComparison.Ordinal);
        Assert.True(code == 3, $"grpc-backup exited {code}, not 3: {stderr}");
    }

    [Fact]
    public async Task An_unreachable_provider_is_one_line_and_exit_4()
    {
        using var work = new TempDirectory();
        Directory.CreateDirectory(work.File("inventory"));
        await File.WriteAllTextAsync(work.File("inventory/100.conf"),
            "type: vm\nqmp: /nonexistent/qmp.sock\ndisk: drive-a file=/nonexistent/a.raw format=raw node=fmt0 filter=top0\n");

        var (code, _, stderr) = await ChildProcess.RunAsync("dotnet", [Cli, "backup", "--endpoint", "unix:" + work.File("nobody.sock"),
            "--inventory", work.File("inventory"), "--guest", "100", "--fleecing-dir", work.Path], timeout: TimeSpan.FromMinutes(3));

        AssertOneLine("grpc-backup", stderr, "nobody.sock");
        Assert.True(code == 4, $"grpc-backup exited {code}, not 4: {stderr}");
    }

    /// <summary>
    /// stderr is one line (argparse's usage line aside) that starts with the program's name and names what was wrong,
    /// and nothing in it is a stack trace.
    /// </summary>
    private static void AssertOneLine(string program, string stderr, string named)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith("usage:", StringComparison.Ordinal) && !l.StartsWith("[--", StringComparison.Ordinal)
                && !l.StartsWith("--", StringComparison.Ordinal)
                // The direct-mode CLI's progress lines ("12:00:00 info: ...") are its log, not the failure.
                && !System.Text.RegularExpressions.Regex.IsMatch(l, @"^\d\d:\d\d:\d\d info: "))
            .ToList();
        Assert.True(lines.Count == 1, $"{program} wrote {lines.Count} lines instead of one:\n{stderr}");
        Assert.StartsWith(program + ":", lines[0], StringComparison.Ordinal);
        Assert.Contains(named, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Traceback", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }
}

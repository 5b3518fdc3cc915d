namespace Grpc.Backup.Conformance.Tests.Infrastructure;

/// <summary>What a passing run of a real provider must show.</summary>
internal static class PassingRun
{
    /// <summary>The checks that prove the round trips ran, rather than being skipped.</summary>
    private static readonly string[] MustPass =
    [
        "identity.handshake", "identity.capabilities-stable", "backup.init-idempotent", "fd.reused-token", "fd.count-mismatch",
        "fd.dead-nbd-socket", "vm.full-backup", "vm.restore-full", "vm.cancel-mid-stream", "vm.incremental-backup", "vm.restore-incremental",
        "repository.delete-keeps-others-restorable", "ct.round-trip", "cleanup.delete-archives-and-end-job",
    ];

    /// <summary>The scratch parent: searchable by others, as the container's root must reach its tree below it.</summary>
    public const UnixFileMode ScratchMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    public static void Assert(ConformanceRun run, string scratchParent)
    {
        Xunit.Assert.True(run.ExitCode == 0, run.ToString());
        Xunit.Assert.Empty(run.Checks("FAIL"));
        foreach (string check in MustPass.Where(c => c != "fd.dead-nbd-socket" || run.Outcome(c) != "SKIP"))
        {
            Xunit.Assert.True(run.Outcome(check) == "PASS", $"{check}: {run.Outcome(check) ?? "not run"}\n{run}");
        }
        // The scratch guest, its disks, fleecing images and restored data are gone.
        Xunit.Assert.Empty(Directory.EnumerateFileSystemEntries(scratchParent));
    }
}

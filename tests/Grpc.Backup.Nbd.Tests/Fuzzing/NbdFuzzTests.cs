using System.Globalization;
using Xunit.Abstractions;

namespace Grpc.Backup.Nbd.Tests.Fuzzing;

/// <summary>
/// The NBD fuzzer as a provider against <see cref="NbdGuard"/> in front of a real qemu-storage-daemon snapshot whose
/// guest keeps writing. A bounded run here; <c>build/fuzz</c> runs many more cases through the same test
/// (GRPC_BACKUP_FUZZ_CASES, GRPC_BACKUP_FUZZ_SEED, and GRPC_BACKUP_FUZZ_REPORT for the summary's file).
/// </summary>
[Collection(NbdGuardCollection.Name)]
public sealed class NbdFuzzTests
{
    private const int DefaultCases = 200;
    private const int DefaultSeed = 150_000;

    private readonly ITestOutputHelper _output;

    public NbdFuzzTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task A_fuzzing_provider_cannot_break_the_guard_qemu_or_the_snapshot()
    {
        var cases = Setting("GRPC_BACKUP_FUZZ_CASES", DefaultCases);
        var seed = Setting("GRPC_BACKUP_FUZZ_SEED", DefaultSeed);
        var run = await NbdFuzzRun.RunAsync(cases, seed);
        var report = run.Report();
        _output.WriteLine(report);
        if (Environment.GetEnvironmentVariable("GRPC_BACKUP_FUZZ_REPORT") is { Length: > 0 } path)
        {
            await File.WriteAllTextAsync(path, report);
        }

        Assert.True(run.Failures.Count == 0, report);
        Assert.Equal(cases, run.Cases);
    }

    private static int Setting(string name, int fallback) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;
}

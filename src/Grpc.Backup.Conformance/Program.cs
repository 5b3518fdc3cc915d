using System.CommandLine;
using System.Text.RegularExpressions;
using Grpc.Backup.Conformance;
using Grpc.Backup.Conformance.Internal;
using Grpc.Backup.Protocol;

// grpc-backup-conformance --provider unix:PATH [--only REGEX] [--scratch DIR]
// Exit status: 0 every check passed or was skipped, 1 a check failed (or the kit itself failed: one line on stderr), 2 usage.
var provider = new Option<string>("--provider") { Description = "The provider's endpoint, unix:PATH (its sideband is PATH.fds)", Required = true };
var only = new Option<string?>("--only") { Description = "Run only the checks whose name matches this regular expression (e.g. '^fd\\.')" };
var scratch = new Option<string?>("--scratch") { Description = "Where the scratch directory is created (default: the temporary directory); needs ~200 MiB" };
var root = new RootCommand("""
    grpc-backup-conformance: checks a backup provider against protos/backup/provider/v1, playing the host.
    Runs as root (it starts a scratch qemu-storage-daemon guest, FUSE views and user namespaces). Everything it
    creates is removed at the end, including the archives it stored (deleted through the provider).
    Exit status: 0 no check failed, 1 a check failed, 2 usage.
    """)
{
    provider,
    only,
    scratch,
};
root.SetAction(async (result, cancellationToken) =>
{
    ProviderEndpoint endpoint;
    Regex? filter;
    try
    {
        endpoint = ProviderEndpoint.Parse(result.GetValue(provider)!);
        filter = result.GetValue(only) is { } pattern ? new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)) : null;
    }
    catch (Exception e) when (e is FormatException or ArgumentException)
    {
        await Console.Error.WriteLineAsync($"grpc-backup-conformance: {e.Message}");
        return 2;
    }
    ConformanceSuite suite;
    try
    {
        suite = new ConformanceSuite(new ConformanceOptions { Endpoint = endpoint, Only = filter, ScratchParent = result.GetValue(scratch) });
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
    {
        await Console.Error.WriteLineAsync($"grpc-backup-conformance: cannot create the scratch directory: {e.Message}");
        return 2;
    }
    await using var _ = suite;
    IReadOnlyList<CheckResult> results = await suite.RunAsync(cancellationToken);
    ResultTable.Write(Console.Out, results);
    return results.Any(r => r.Outcome == CheckOutcome.Failed) ? 1 : 0;
});
ParseResult parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    await Console.Error.WriteLineAsync($"grpc-backup-conformance: {parsed.Errors[0].Message} (see grpc-backup-conformance --help)");
    return 2;
}
try
{
    return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is not OutOfMemoryException)
{
    ProgramFailure.Report("grpc-backup-conformance", e);
    return 1;
}

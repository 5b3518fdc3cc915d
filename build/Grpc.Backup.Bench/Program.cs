using System.Globalization;
using System.Text.Json;
using Grpc.Backup.Bench;
using Grpc.Backup.Protocol;

// Usage: Grpc.Backup.Bench --endpoint unix:PATH --out artifacts/bench/results.json [--only borg|restic|ct|live]
// --only borg (restic) runs the Borg (restic) provider's rows alone (then --endpoint may be omitted), to measure that
// provider on its own; --only ct the container measures alone (with --work); --only live the live-restore rows alone
// (with --work, --dense-guest).
bool borgOnly = Argument("--only") == "borg";
bool resticOnly = Argument("--only") == "restic";
bool containersOnly = Argument("--only") == "ct";
string endpointText = Argument("--endpoint") ?? (borgOnly || resticOnly ? "" : throw new ArgumentException("--endpoint unix:PATH is required"));
string output = Argument("--out") ?? "artifacts/bench/results.json";
int calls = int.Parse(Argument("--calls") ?? "5000", CultureInfo.InvariantCulture);

var results = new List<BenchResult>();
string? work = Argument("--work");
if (borgOnly)
{
    results.AddRange(await BorgBench.RunAsync(Path.Combine(work!, "borg"), Argument("--borg-endpoint")!, Argument("--dense-guest")!,
        Argument("--borg-peer-repo")!, Argument("--borg-passphrase-file")!));
    work = null;
}
else if (resticOnly)
{
    results.AddRange(await ResticBench.RunAsync(Path.Combine(work!, "restic"), Argument("--restic-endpoint")!, Argument("--dense-guest")!,
        Argument("--restic-peer-repo")!, Argument("--restic-password-file")!));
    work = null;
}
else if (Argument("--only") == "live")
{
    results.AddRange(await LiveRestoreBench.RunAsync(Path.Combine(work!, "live"), endpointText, Argument("--dense-guest")!));
    work = null;
}
else if (!containersOnly)
{
    results.AddRange(await UnaryLatencyBench.RunAsync(ProviderEndpoint.Parse(endpointText), calls, rounds: 7));
}
// VM measures run when build/bench started the demo guests (a dense disk, a sparse one and a large sparse one).
if (work is not null && Argument("--dense-guest") is { } dense)
{
    results.AddRange(await VmBench.RunAsync(Path.Combine(work, "dense"), endpointText, dense, "vm-full-nbd", withIncrementalAndRestore: true));
    if (Argument("--provider-pid") is { } providerPid && Argument("--cli") is { } cli)
    {
        results.AddRange(await PeakRssBench.RunAsync(Path.Combine(work, "rss"), endpointText,
            int.Parse(providerPid, CultureInfo.InvariantCulture), cli, dense, results.Single(r => r.Name == "vm-full-nbd").OursSeconds));
    }
}
if (work is not null && Argument("--dense-guest") is { } denseForLive)
{
    results.AddRange(await LiveRestoreBench.RunAsync(Path.Combine(work, "live"), endpointText, denseForLive));
}
if (work is not null && Argument("--dense-guest") is { } denseForFiles && Argument("--file-handle-endpoint") is { } fileHandleEndpoint)
{
    results.Add(await FileHandleBench.RunAsync(Path.Combine(work, "dense-fh"), fileHandleEndpoint, denseForFiles));
    results.AddRange(await GuestWriteLatencyBench.RunAsync(Path.Combine(work, "latency"), endpointText, denseForFiles));
}
if (work is not null && Argument("--dense-guest") is { } denseGuest && Argument("--borg-endpoint") is { } borgEndpoint)
{
    results.AddRange(await BorgBench.RunAsync(Path.Combine(work, "borg"), borgEndpoint, denseGuest, Argument("--borg-peer-repo")!,
        Argument("--borg-passphrase-file")!));
}
if (work is not null && Argument("--dense-guest") is { } denseForRestic && Argument("--restic-endpoint") is { } resticEndpoint)
{
    results.AddRange(await ResticBench.RunAsync(Path.Combine(work, "restic"), resticEndpoint, denseForRestic, Argument("--restic-peer-repo")!,
        Argument("--restic-password-file")!));
}
if (work is not null && Argument("--multi-guest") is { } multi)
{
    results.Add(await MultiDiskBench.RunAsync(Path.Combine(work, "multi"), endpointText, multi));
}
if (work is not null && Argument("--sparse-guest") is { } sparse)
{
    results.AddRange(await VmBench.RunAsync(Path.Combine(work, "sparse"), endpointText, sparse, "vm-sparse-nbd", withIncrementalAndRestore: false));
}
if (work is not null && Argument("--large-sparse-guest") is { } largeSparse)
{
    results.AddRange(await VmBench.RunAsync(Path.Combine(work, "large-sparse"), endpointText, largeSparse, "vm-sparse-64g", withIncrementalAndRestore: false));
}

if (Argument("--etcd-endpoint") is { } etcd)
{
    results.AddRange(await ClusterSlotBench.RunAsync(new Uri(etcd), callsPerRound: 400, rounds: 5));
}

if (work is not null && !args.Contains("--skip-ct"))
{
    results.AddRange(await ContainerBench.RunAsync(Path.Combine(work, "ct"), endpointText));
}

Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
await File.WriteAllTextAsync(output, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
Console.WriteLine($"{"name",-22} {"ours",12} {"peer",12} {"ratio",7}  peer tool; notes");
foreach (BenchResult r in results)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{r.Name,-22} {Format(r.OursSeconds, r.Unit),12} {Format(r.PeerSeconds, r.Unit),12} {r.Ratio,7:0.00}  {r.Peer}; {r.Notes}"));
}
return 0;

static string Format(double seconds, string unit) => unit != "s"
    ? string.Create(CultureInfo.InvariantCulture, $"{seconds:0.0} {unit}")
    : seconds < 1e-3
    ? string.Create(CultureInfo.InvariantCulture, $"{seconds * 1e6:0.0} us")
    : string.Create(CultureInfo.InvariantCulture, $"{seconds * 1e3:0.00} ms");

string? Argument(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

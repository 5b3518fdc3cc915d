namespace Grpc.Backup.Bench;

/// <summary>
/// restic-vm-full and restic-vm-restore (<see cref="RepositoryProviderBench"/>): the restic provider (Python, restic
/// backup --stdin behind it) against <c>restic backup --stdin</c> of the same image file, and <c>restic restore</c> of
/// that snapshot (restic 0.14 restores dense: it has no --sparse yet).
/// </summary>
internal static class ResticBench
{
    public static Task<IReadOnlyList<BenchResult>> RunAsync(string work, string providerEndpoint, string guestDir, string peerRepository,
        string passwordFile)
    {
        string restic = $"restic --repo '{peerRepository}' --password-file '{passwordFile}' --no-cache --quiet";
        return RepositoryProviderBench.RunAsync("restic", work, providerEndpoint, guestDir,
            "restic backup --stdin (same image)",
            image => Tool.RunAsync("bash", "-c", $"{restic} backup --stdin --stdin-filename disk.raw < '{image}'"),
            "restic restore latest (peer snapshot) + sync",
            target => Tool.RunAsync("bash", "-c", $"{restic} restore latest --target '{target}' && sync -f '{target}'"));
    }
}

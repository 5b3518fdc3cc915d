namespace Grpc.Backup.Bench;

/// <summary>
/// borg-vm-full and borg-vm-restore (<see cref="RepositoryProviderBench"/>): the Borg provider against <c>borg
/// create</c> of the same image file with the same chunker and compression, and <c>borg extract --sparse</c> of that
/// archive.
/// </summary>
internal static class BorgBench
{
    public static Task<IReadOnlyList<BenchResult>> RunAsync(string work, string providerEndpoint, string guestDir, string peerRepository,
        string passphraseFile)
    {
        Environment.SetEnvironmentVariable("BORG_PASSCOMMAND", "cat " + passphraseFile);
        Environment.SetEnvironmentVariable("BORG_BASE_DIR", Path.Combine(work, "peer-borg"));
        return RepositoryProviderBench.RunAsync("borg", work, providerEndpoint, guestDir,
            "borg create (same image, fixed 4 MiB, lz4)",
            image => Tool.RunAsync("borg", "create", "--chunker-params", "fixed,4194304", "--compression", "lz4", peerRepository + "::peer", image),
            "borg extract --sparse (peer archive) + sync",
            target => Tool.RunAsync("bash", "-c", $"cd '{target}' && borg extract --sparse '{peerRepository}::peer' && sync -f ."));
    }
}

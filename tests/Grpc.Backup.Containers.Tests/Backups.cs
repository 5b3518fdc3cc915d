using System.Formats.Tar;

namespace Grpc.Backup.Containers.Tests;

/// <summary>Runs a tar-stream backup the way a provider consumes it: reading the pipe's read end to EOF.</summary>
internal static class Backups
{
    public static async Task<(byte[] Stream, TarStreamBackupResult Result)> RunAsync(ContainerBackupOptions options)
    {
        (byte[] stream, TarStreamBackupResult result, _) = await RunWithHolderAsync(options);
        return (stream, result);
    }

    /// <summary>Also returns the pid of the namespace holder, to check it is gone afterwards.</summary>
    public static async Task<(byte[] Stream, TarStreamBackupResult Result, int Holder)> RunWithHolderAsync(ContainerBackupOptions options)
    {
        await using TarStreamBackup backup = await TarStreamBackup.StartAsync(options);
        using var received = new MemoryStream();
        await using (var pipe = new FileStream(backup.ReadHandle, FileAccess.Read, bufferSize: 0))
        {
            await pipe.CopyToAsync(received);
        }
        TarStreamBackupResult result = await backup.Completion;
        return (received.ToArray(), result, backup.HolderProcessId);
    }

    /// <summary>Every member of a plain tar stream, by canonical name ("etc/hostname"; "" for the root).</summary>
    public static Dictionary<string, TarEntry> Members(byte[] stream)
    {
        var members = new Dictionary<string, TarEntry>(StringComparer.Ordinal);
        using var reader = new TarReader(new MemoryStream(stream));
        while (reader.GetNextEntry(copyData: true) is TarEntry entry)
        {
            string name = entry is PaxTarEntry pax && pax.ExtendedAttributes.TryGetValue("GNU.sparse.name", out string? sparse) ? sparse : entry.Name;
            members[string.Join('/', name.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != "."))] = entry;
        }
        return members;
    }

    /// <summary>A regular member's content as text.</summary>
    public static string Text(TarEntry entry)
    {
        using var reader = new StreamReader(entry.DataStream!);
        return reader.ReadToEnd();
    }

    /// <summary>
    /// Fails unless nothing of a backup is left: the work directory is empty, the host has no mount under it, and the
    /// holder is gone (the view's mounts only ever exist in its private mount namespace, which died with it).
    /// </summary>
    public static void AssertCleanedUp(string workDirectory, int holder)
    {
        Assert.Empty(Directory.EnumerateFileSystemEntries(workDirectory));
        Assert.Empty(Host.MountsUnder(workDirectory));
        Assert.False(Directory.Exists($"/proc/{holder}"), $"the namespace holder {holder} is still running");
    }

    public static bool Contains(byte[] haystack, string needle) => haystack.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(needle)) >= 0;
}

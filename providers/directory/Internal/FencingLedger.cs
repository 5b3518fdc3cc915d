using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;

namespace Grpc.Backup.Providers.Directory.Internal;

/// <summary>
/// Fencing tokens (JobInit option <c>fencing-token: SLOT@REVISION</c>, protos/README.md "Fencing tokens"): the
/// repository keeps the newest revision seen for each cluster slot in <c>@fencing/SLOT</c> (not a valid guest id, so never a guest's directory). A job whose token is
/// older than that is refused at JobInit, and again at BackupInit and at the commit (BackupCleanup(success)): its host
/// lost the slot while it was paused or cut off, and another host holds it now. Reads and updates take an flock on
/// <c>@fencing/@lock</c>, so provider processes of several hosts sharing the repository compare and write one at a time.
/// A job without a token (single-host operation) is not fenced.
/// </summary>
internal sealed class FencingLedger(ArchiveStore store)
{
    private static readonly TimeSpan LockBound = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<string, FencingToken> _jobs = new(StringComparer.Ordinal);

    private string Directory => Path.Join(store.Root, "@fencing");

    /// <summary>Admits the job's token (recording it as the slot's newest) or refuses it; no option: nothing to do.</summary>
    public async Task AdmitAsync(string jobId, IReadOnlyDictionary<string, string> options, CancellationToken cancellationToken)
    {
        if (!options.TryGetValue(FencingToken.OptionName, out string? text))
        {
            return;
        }
        if (!FencingToken.TryParse(text, out FencingToken token))
        {
            throw ContractErrors.InvalidArgument($"option {FencingToken.OptionName} '{text}' is not SLOT@REVISION");
        }
        using (await LockAsync(cancellationToken))
        {
            long newest = ReadNewest(token.Slot);
            Refuse(token, newest);
            if (token.Revision > newest)
            {
                string path = SlotFile(token.Slot);
                System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                AtomicFile.Write(path, Encoding.ASCII.GetBytes(token.Revision.ToString(CultureInfo.InvariantCulture) + "\n"));
            }
        }
        _jobs[jobId] = token;
    }

    /// <summary>Throws REPOSITORY_LOCKED if the job's token is no longer the newest for its slot.</summary>
    public async Task CheckAsync(string jobId, CancellationToken cancellationToken)
    {
        if (_jobs.TryGetValue(jobId, out FencingToken token))
        {
            using (await LockAsync(cancellationToken))
            {
                Refuse(token, ReadNewest(token.Slot));
            }
        }
    }

    public void Forget(string jobId) => _jobs.TryRemove(jobId, out _);

    private static void Refuse(FencingToken token, long newest)
    {
        if (token.Revision < newest)
        {
            throw ProviderErrors.Create(ErrorReason.RepositoryLocked,
                $"fencing token {token} is stale: slot {token.Slot} was since taken at revision {newest}");
        }
    }

    private string SlotFile(string slot) => Path.Join(Directory, slot);

    private long ReadNewest(string slot)
    {
        try
        {
            string text = File.ReadAllText(SlotFile(slot)).Trim();
            return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long revision)
                ? revision
                : throw new InvalidDataException($"{SlotFile(slot)} does not hold a revision");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return 0;
        }
    }

    /// <summary>An exclusive flock on <c>@fencing/@lock</c> (.NET takes it for FileShare.None; @ is never in a slot name), retried until the bound.</summary>
    private async Task<FileStream> LockAsync(CancellationToken cancellationToken)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string path = Path.Join(Directory, "@lock");
        long deadline = Environment.TickCount64 + (long)LockBound.TotalMilliseconds;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (Environment.TickCount64 < deadline)
            {
                await Task.Delay(20, cancellationToken);
            }
        }
    }
}

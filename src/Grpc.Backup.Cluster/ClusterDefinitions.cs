using System.Globalization;
using System.Text.RegularExpressions;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Backup.Cluster.Internal;

namespace Grpc.Backup.Cluster;

/// <summary>
/// <c>grpc-backup cluster apply DIR</c>'s side in etcd: the administrator's job and storage definitions under
/// <c>config/</c>, replaced whole in one transaction, so a host reads either the previous set or the new one, never a
/// mix. Only the administrator writes them (<see cref="ClusterAccess"/> gives a host read access to <c>config/</c> and
/// no more). The caller validates the files first, with the same parser the hosts use.
/// </summary>
public static partial class ClusterDefinitions
{
    /// <summary>etcd's default <c>--max-txn-ops</c>: one apply is one transaction, the applied marker included.</summary>
    public const int MaxFiles = 127;

    internal const string AppliedKey = "config/applied";

    /// <summary>
    /// Replaces every definition under <c>config/</c> with <paramref name="files"/> (name relative to the applied
    /// directory: <c>storages/NAME.conf</c> or <c>jobs/NAME.conf</c>) in one transaction, and returns its revision.
    /// The transaction compares the applied marker's revision as read, so two administrators applying at once cannot
    /// interleave: the loser reads again and replaces the winner's set whole.
    /// </summary>
    public static async Task<long> ApplyAsync(ClusterOptions admin, IReadOnlyDictionary<string, string> files, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(admin);
        ArgumentNullException.ThrowIfNull(files);
        if (files.Count > MaxFiles)
        {
            throw new ArgumentException($"{files.Count} definition files: one apply is one etcd transaction, at most {MaxFiles} files", nameof(files));
        }
        if (files.Keys.FirstOrDefault(f => !FileName().IsMatch(f)) is { } bad)
        {
            throw new ArgumentException($"'{bad}' is not a definition file (storages/NAME.conf or jobs/NAME.conf)", nameof(files));
        }
        using EtcdClient client = EtcdClientFactory.Create(admin);
        var keys = new EtcdKeys(client);
        string prefix = admin.KeyPrefix + "config/";
        string applied = admin.KeyPrefix + AppliedKey;
        for (int attempt = 0; ; attempt++)
        {
            var (kvs, _) = await keys.RangeAsync(prefix, cancellationToken).ConfigureAwait(false);
            var wanted = files.ToDictionary(f => prefix + f.Key, f => f.Value, StringComparer.Ordinal);
            wanted[applied] = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture);
            var txn = new TxnRequest();
            // Every apply rewrites the marker: if it is still as read, no other apply came in between.
            txn.Compare.Add(ModifiedAt(applied, kvs.FirstOrDefault(kv => kv.Key.ToStringUtf8() == applied)?.ModRevision ?? 0));
            foreach (string key in kvs.Select(kv => kv.Key.ToStringUtf8()).Where(key => !wanted.ContainsKey(key)))
            {
                txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = ByteString.CopyFromUtf8(key) } });
            }
            foreach (var (key, text) in wanted)
            {
                txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(text) } });
            }
            if (txn.Success.Count > MaxFiles + 1)
            {
                // etcd refuses a bigger transaction; a set that replaces many other names goes in two applies.
                throw new InvalidOperationException(
                    $"replacing {txn.Success.Count - wanted.Count} definition(s) by {files.Count} takes more than etcd's {MaxFiles + 1} operations in one transaction: apply it in two steps, removing part of the old set first");
            }
            // A retried transaction that had committed compares false the second time, reads the new set and writes it
            // again: the result is the same set, at a later revision.
            TxnResponse response = await EtcdRetry.RunAsync(token => client.TransactionAsync(txn, cancellationToken: token), cancellationToken)
                .ConfigureAwait(false);
            if (response.Succeeded)
            {
                return response.Header.Revision;
            }
            if (attempt == 5)
            {
                throw new InvalidOperationException("the cluster's definitions kept changing while they were applied: another apply is running");
            }
        }
    }

    /// <summary>Every applied definition file and the revision of the apply (the applied marker's).</summary>
    internal static ClusterDefinitionFiles FromRange(string keyPrefix, IEnumerable<Mvccpb.KeyValue> kvs)
    {
        string prefix = keyPrefix + "config/";
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        long revision = 0;
        foreach (Mvccpb.KeyValue kv in kvs)
        {
            string name = kv.Key.ToStringUtf8()[prefix.Length..];
            if (keyPrefix + AppliedKey == kv.Key.ToStringUtf8())
            {
                revision = kv.ModRevision;
            }
            else
            {
                files[name] = kv.Value.ToStringUtf8();
            }
        }
        return new ClusterDefinitionFiles(files, revision);
    }

    /// <summary>"The key was last modified at <paramref name="revision"/>" (0: the key does not exist).</summary>
    private static Compare ModifiedAt(string key, long revision) => new()
    {
        Key = ByteString.CopyFromUtf8(key),
        Target = Compare.Types.CompareTarget.Mod,
        Result = Compare.Types.CompareResult.Equal,
        ModRevision = revision,
    };

    [GeneratedRegex("^(storages|jobs)/[A-Za-z0-9._-]{1,64}\\.conf\\z")]
    private static partial Regex FileName();
}

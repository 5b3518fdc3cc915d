using Authpb;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Backup.Cluster.Internal;
using Grpc.Core;

namespace Grpc.Backup.Cluster;

/// <summary>
/// etcd's own authorisation for the cluster: a user and a role per host, so a host's credentials write only its own
/// keys (its node key, its guest registrations, its per-host slots, its run records) and the shared ones it must
/// contend for (storage slots, elections), and read the rest. With <c>--client-cert-auth</c> etcd takes a client
/// certificate's CN as the user name, so a host's user is its node name and has no password; the administrator's
/// certificate has CN <c>root</c>. Every call here is idempotent: run it again after adding a host.
/// </summary>
public static class ClusterAccess
{
    /// <summary>The role of one host: <c>grpc-backup-host-NODE</c>.</summary>
    public static string RoleName(string node) => "grpc-backup-host-" + node;

    /// <summary>
    /// Creates (or completes) <paramref name="node"/>'s user and role with the admin's client, whose options carry the
    /// <c>root</c> certificate. Works before and after auth is enabled.
    /// </summary>
    public static async Task AddHostAsync(ClusterOptions admin, string node, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(admin);
        if (string.IsNullOrEmpty(node) || node == "root" || node.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-')))
        {
            throw new ArgumentException($"'{node}' is not a host's node name ([A-Za-z0-9._-], not 'root')", nameof(node));
        }
        using EtcdClient client = EtcdClientFactory.Create(admin);
        string role = RoleName(node);
        await IgnoreExistingAsync(() => client.UserAddAsync(new AuthUserAddRequest { Name = node, Options = new UserAddOptions { NoPassword = true } },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        await IgnoreExistingAsync(() => client.RoleAddAsync(new AuthRoleAddRequest { Name = role }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        foreach (Permission permission in HostPermissions(admin.KeyPrefix, node))
        {
            await client.RoleGrantPermissionAsync(new AuthRoleGrantPermissionRequest { Name = role, Perm = permission },
                cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        await client.UserGrantRoleAsync(new AuthUserGrantRoleRequest { User = node, Role = role }, cancellationToken: cancellationToken)
            .ConfigureAwait(false);
    }

    /// <summary>
    /// Creates the <c>root</c> user (no password: its certificate's CN authenticates it) with etcd's root role, and
    /// turns authorisation on. From then on a certificate whose CN is no user is refused every request.
    /// </summary>
    public static async Task EnableAsync(ClusterOptions admin, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(admin);
        using EtcdClient client = EtcdClientFactory.Create(admin);
        await IgnoreExistingAsync(() => client.UserAddAsync(new AuthUserAddRequest { Name = "root", Options = new UserAddOptions { NoPassword = true } },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        await IgnoreExistingAsync(() => client.RoleAddAsync(new AuthRoleAddRequest { Name = "root" }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        await client.UserGrantRoleAsync(new AuthUserGrantRoleRequest { User = "root", Role = "root" }, cancellationToken: cancellationToken).ConfigureAwait(false);
        await client.AuthEnableAsync(new AuthEnableRequest(), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>What a host may do, as etcd permissions on key ranges under <paramref name="prefix"/>.</summary>
    internal static IEnumerable<Permission> HostPermissions(string prefix, string node)
    {
        yield return Range(Permission.Types.Type.Read, prefix);
        yield return Key(Permission.Types.Type.Readwrite, $"{prefix}nodes/{node}");
        yield return Range(Permission.Types.Type.Readwrite, $"{prefix}guests/{node}/");
        yield return Range(Permission.Types.Type.Readwrite, $"{prefix}slots/host/{node}/");
        yield return Range(Permission.Types.Type.Readwrite, $"{prefix}slots/storage/");
        yield return Range(Permission.Types.Type.Readwrite, $"{prefix}election/");
        // The scheduler is whichever host leads the election: any host may fire a run and record its time.
        yield return Range(Permission.Types.Type.Readwrite, $"{prefix}fire/");
        yield return Range(Permission.Types.Type.Readwrite, $"{prefix}schedule/");
        yield return Range(Permission.Types.Type.Readwrite, $"{prefix}runs/{node}/");
    }

    private static Permission Key(Permission.Types.Type type, string key) => new() { PermType = type, Key = ByteString.CopyFromUtf8(key) };

    private static Permission Range(Permission.Types.Type type, string prefix) => new()
    {
        PermType = type,
        Key = ByteString.CopyFromUtf8(prefix),
        RangeEnd = ByteString.CopyFromUtf8(EtcdKeys.RangeEnd(prefix)),
    };

    private static async Task IgnoreExistingAsync(Func<Task> call)
    {
        try
        {
            await call().ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition && e.Status.Detail.Contains("already exists", StringComparison.Ordinal))
        {
        }
    }
}

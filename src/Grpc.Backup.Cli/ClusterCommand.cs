using System.CommandLine;
using Grpc.Backup.Cluster;
using Grpc.Backup.Service.Internal.Configuration;
using Grpc.Core;

namespace Grpc.Backup.Cli;

/// <summary>
/// <c>grpc-backup cluster add-host NODE</c> and <c>grpc-backup cluster enable-auth</c>: the administrator's side of a
/// cluster's etcd authorisation (<see cref="ClusterAccess"/>), run with the certificate whose CN is <c>root</c>.
/// <c>grpc-backup cluster apply DIR</c>: the cluster's job and storage definitions, checked by the parser the hosts use
/// (the service's configuration files, compiled into this program too) and published in one transaction
/// (<see cref="ClusterDefinitions"/>). They speak to etcd directly, not to the service. All are idempotent; an etcd
/// refusal exits 1 with etcd's reason, invalid definitions exit 78 with every error, as grpc-backupd's configuration.
/// </summary>
internal static class ClusterCommand
{
    public static Command Create()
    {
        var node = new Argument<string>("node") { Description = "The host's node name: its host.conf 'node' and its client certificate's CN" };
        var addHost = new Command("add-host", "Create a host's etcd user and role: it may write only its own keys and the shared slots and elections")
        {
            node,
        };
        var enable = new Command("enable-auth", "Create etcd's root user (its certificate's CN) and turn etcd's authorisation on");
        var directory = new Argument<string>("directory") { Description = "storages/NAME.conf and jobs/NAME.conf, written as in a host's configuration directory" };
        var apply = new Command("apply", "Check job and storage definitions as a host does, then give them to every host: they replace the previous set in one etcd transaction")
        {
            directory,
        };
        Option<string>[] connection = [.. ConnectionOptions()];
        foreach (Option<string> option in connection)
        {
            addHost.Options.Add(option);
            enable.Options.Add(option);
            apply.Options.Add(option);
        }
        addHost.SetAction((result, cancellationToken) =>
            RunAsync(() => Done(ClusterAccess.AddHostAsync(Admin(result, connection), result.GetValue(node)!, cancellationToken))));
        enable.SetAction((result, cancellationToken) =>
            RunAsync(() => Done(ClusterAccess.EnableAsync(Admin(result, connection), cancellationToken))));
        apply.SetAction((result, cancellationToken) =>
            RunAsync(() => ApplyAsync(Admin(result, connection), result.GetValue(directory)!, cancellationToken)));
        return new Command("cluster", "Administer the etcd cluster the hosts share (issue 19)") { addHost, enable, apply };
    }

    private static async Task<int> ApplyAsync(ClusterOptions admin, string directory, CancellationToken cancellationToken)
    {
        string root = Path.GetFullPath(directory);
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"{directory}: no such directory");
        }
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string kind in new[] { "storages", "jobs" })
        {
            string path = Path.Combine(root, kind);
            foreach (string file in Directory.Exists(path) ? Directory.EnumerateFiles(path, "*.conf") : [])
            {
                files[$"{kind}/{Path.GetFileName(file)}"] = await File.ReadAllTextAsync(file, cancellationToken);
            }
        }
        AppliedDefinitions definitions;
        try
        {
            definitions = AppliedDefinitions.Parse(files, root + "/", 0);
        }
        catch (ConfigurationErrorsException e)
        {
            foreach (var error in e.Errors)
            {
                await Console.Error.WriteLineAsync($"grpc-backup: {error.Message}");
            }
            await Console.Error.WriteLineAsync($"grpc-backup: definitions refused ({e.Errors.Count} error(s)); nothing was applied");
            return ExitCodes.InvalidConfiguration;
        }
        long revision = await ClusterDefinitions.ApplyAsync(admin, files, cancellationToken);
        Console.WriteLine($"applied {definitions.Storages.Count} storage(s) and {definitions.Jobs.Count} job(s) as revision {revision}");
        return ExitCodes.Success;
    }

    private static async Task<int> Done(Task call)
    {
        await call;
        return ExitCodes.Success;
    }

    private static IEnumerable<Option<string>> ConnectionOptions()
    {
        yield return new Option<string>("--endpoints") { Description = "etcd members, https://host:port separated by commas", Required = true };
        yield return new Option<string>("--ca") { Description = "The CA that signed the members' certificates (PEM)", Required = true };
        yield return new Option<string>("--cert") { Description = "The administrator's client certificate, CN root (PEM)", Required = true };
        yield return new Option<string>("--key") { Description = "Its key (PEM); a file, never the key itself", Required = true };
    }

    private static ClusterOptions Admin(ParseResult result, Option<string>[] connection)
    {
        var endpoints = new List<Uri>();
        foreach (string word in result.GetValue(connection[0])!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(word, UriKind.Absolute, out Uri? url) || url.Scheme != Uri.UriSchemeHttps)
            {
                throw new ArgumentException($"--endpoints: '{word}' is not an etcd member's https://host:port");
            }
            endpoints.Add(url);
        }
        return new ClusterOptions
        {
            Endpoints = endpoints, Node = "root",
            CaFile = result.GetValue(connection[1]), CertFile = result.GetValue(connection[2]), KeyFile = result.GetValue(connection[3]),
        };
    }

    private static async Task<int> RunAsync(Func<Task<int>> call)
    {
        try
        {
            return await call();
        }
        catch (RpcException e)
        {
            // Not a provider: CliFailure's wording for RpcException would blame one.
            await Console.Error.WriteLineAsync($"grpc-backup: etcd refused: {e.Status.StatusCode}: {e.Status.Detail}");
            return ExitCodes.Failure;
        }
    }
}
